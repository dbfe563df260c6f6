//! The memory bound of one evaluation. GitHub stops an expression whose results in hand
//! at one time exceed 1 MiB, counting a string as 26 bytes plus 2 per UTF-16 code unit
//! and any other value as 24 bytes; the same count applies here, so that an expression
//! like `format('{0}{0}{0}{0}', format(...))` nested 40 deep fails with GitHub's message
//! instead of growing until the process runs out of memory.
//!
//! A node's result is counted when the node finishes; the results of its operands are
//! released then, so what is counted is what a pending parent still holds (the left
//! operand while the right one is evaluated, the arguments of a call). Functions that
//! build strings (`format`, `join`, `toJSON`) stop as soon as their output would not fit.

use std::cell::Cell;

use super::value::Value;

/// The most bytes the results of one evaluation may hold at once (GitHub's 1 MiB).
pub const MAX_MEMORY_BYTES: usize = 1_048_576;

/// The overhead GitHub counts for a string, and for any other value.
const STRING_OVERHEAD: usize = 26;
const VALUE_BYTES: usize = 24;

/// GitHub's message, followed by the expression.
pub const MEMORY_EXCEEDED: &str =
    "The maximum allowed memory size was exceeded while evaluating the following expression";

/// An output that would not fit in what is left of the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryExceeded;

/// The UTF-16 length of `s`, the unit GitHub counts strings in.
pub fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.encode_utf16().count()
    }
}

/// The bytes a string of `units` UTF-16 code units is counted as.
pub fn string_bytes(units: usize) -> usize {
    units.saturating_mul(2).saturating_add(STRING_OVERHEAD)
}

/// The most UTF-16 code units a string counted within `bytes` may have.
pub fn max_units(bytes: usize) -> usize {
    bytes.saturating_sub(STRING_OVERHEAD) / 2
}

/// The bytes a result is counted as.
pub fn result_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => string_bytes(utf16_len(s)),
        _ => VALUE_BYTES,
    }
}

/// The bytes held by the results of one evaluation.
#[derive(Debug, Default)]
pub struct Memory {
    used: Cell<usize>,
}

impl Memory {
    /// The bytes held now; [`Memory::release_to`] returns to it.
    pub fn mark(&self) -> usize {
        self.used.get()
    }

    /// Releases every result counted since `mark`.
    pub fn release_to(&self, mark: usize) {
        self.used.set(mark.min(self.used.get()));
    }

    /// The bytes a result may take when everything counted since `mark` is released.
    pub fn room_after(mark: usize) -> usize {
        MAX_MEMORY_BYTES.saturating_sub(mark)
    }

    /// Counts `bytes` more; fails when the total would pass the bound.
    pub fn hold(&self, bytes: usize) -> Result<(), MemoryExceeded> {
        let total = self.used.get().saturating_add(bytes);
        if total > MAX_MEMORY_BYTES {
            return Err(MemoryExceeded);
        }
        self.used.set(total);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_count_utf16_units_twice_plus_overhead() {
        assert_eq!(result_bytes(&Value::string("")), 26);
        assert_eq!(result_bytes(&Value::string("abc")), 32);
        // 'é' is one UTF-16 unit, '😀' two.
        assert_eq!(result_bytes(&Value::string("é😀")), 26 + 6);
        assert_eq!(result_bytes(&Value::Bool(true)), 24);
        assert_eq!(result_bytes(&Value::array(vec![])), 24);
        assert_eq!(max_units(string_bytes(1000)), 1000);
    }

    #[test]
    fn holding_past_the_bound_fails_and_release_returns_room() {
        let memory = Memory::default();
        assert!(memory.hold(MAX_MEMORY_BYTES - 10).is_ok());
        let mark = memory.mark();
        assert_eq!(memory.hold(11), Err(MemoryExceeded));
        assert!(memory.hold(10).is_ok());
        memory.release_to(mark);
        assert_eq!(memory.mark(), MAX_MEMORY_BYTES - 10);
        memory.release_to(0);
        assert_eq!(Memory::room_after(memory.mark()), MAX_MEMORY_BYTES);
    }
}
