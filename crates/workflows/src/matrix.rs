//! `strategy.matrix` expansion with GitHub's `include` / `exclude` rules and the 256-leg limit.
//!
//! The rules, as GitHub's workflow parser (`MatrixBuilder`) applies them:
//! 1. Every key other than `include` and `exclude` is a *vector*: a non-empty array.
//!    The legs are the cross product of the vectors, the first vector varying slowest
//!    (`os: [a, b]`, `node: [1, 2]` gives `a1 a2 b1 b2`).
//! 2. A leg is dropped when any `exclude` entry matches it. Entries may only name
//!    vectors, and match partially (see below).
//! 3. Each `include` entry is split into its *filter* (the keys that name vectors) and
//!    its *extras* (all other keys). Every remaining leg that the filter matches gets the
//!    extras; when several entries match, later extras overwrite earlier ones, and
//!    vector values are never overwritten (extras never name a vector). An entry with no
//!    filter keys matches every leg.
//! 4. Each `include` entry that matched no leg becomes a leg of its own: its filter
//!    keys, then its extras. A matrix with only `include` therefore gives one leg per
//!    entry.
//!
//! Matching ("the filter matches the leg") compares leaf by leaf with the expression
//! language's `==`: strings ignore case, `'14'` equals `14`, nested objects and arrays
//! match partially. See [`entry_match`].
//!
//! A leg keeps its keys in order: the vectors in declared order, then the extras in the
//! order they were first added.
//!
//! For the caller (the planner):
//! - Zero legs is a valid result (every combination excluded and no `include`). GitHub
//!   then runs the job once, with `matrix` null and its plain display name.
//! - GitHub prefixes these errors with `Error when evaluating 'strategy' for job '<id>'.`
//! - `strategy.job-index` is the leg's position, `job-total` the number of legs.

mod display_name;
mod entry_match;

use crate::expression::value::{fold_key, number_to_json};
use crate::expression::{Kind, Object, Value};

use entry_match::EntryFilter;

pub use display_name::display_name;

/// One leg: the matrix values of one job run, in key order (vector keys first, in their
/// declared order, then the keys added by `include`).
pub type Leg = Object;

/// The most legs one matrix may produce (GitHub's documented limit).
pub const MAX_LEGS: usize = 256;

/// The largest cross product that is evaluated at all; bigger ones are rejected before
/// any leg is built, since `exclude` cannot realistically bring them under [`MAX_LEGS`].
pub const MAX_CROSS_PRODUCT: usize = 1 << 16;

/// Why a matrix could not be expanded. Messages quoted in backticks in the variant docs
/// are GitHub's own wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatrixError {
    #[error("strategy.matrix must be a mapping of vectors, not {kind}")]
    NotAnObject { kind: Kind },
    /// GitHub: `Matrix must define at least one vector`.
    #[error("Matrix must define at least one vector")]
    NoVectors,
    #[error("Matrix vector '{key}' must be a sequence of values, not {kind}")]
    VectorNotArray { key: String, kind: Kind },
    /// GitHub: `Matrix vector 'os' does not contain any values`.
    #[error("Matrix vector '{key}' does not contain any values")]
    EmptyVector { key: String },
    #[error("Matrix include must be a sequence of mappings, not {kind}")]
    IncludeNotArray { kind: Kind },
    #[error("Matrix exclude must be a sequence of mappings, not {kind}")]
    ExcludeNotArray { kind: Kind },
    #[error("Matrix include item {index} must be a mapping, not {kind}")]
    IncludeItemNotObject { index: usize, kind: Kind },
    #[error("Matrix exclude item {index} must be a mapping, not {kind}")]
    ExcludeItemNotObject { index: usize, kind: Kind },
    /// GitHub: `Matrix include mapping does not contain any values`.
    #[error("Matrix include mapping does not contain any values")]
    EmptyInclude { index: usize },
    /// GitHub: `Matrix exclude filter must not be empty`.
    #[error("Matrix exclude filter must not be empty")]
    EmptyExclude { index: usize },
    /// GitHub: `Matrix exclude key 'x' does not match any key within the matrix`.
    #[error("Matrix exclude key '{key}' does not match any key within the matrix")]
    ExcludeUnknownKey { key: String },
    #[error(
        "Strategy produced {count} jobs, more than the maximum of {MAX_LEGS}: remove vector values or add `exclude` entries"
    )]
    TooManyLegs { count: usize },
    #[error(
        "Strategy matrix has {count} combinations before `exclude`, more than the {MAX_CROSS_PRODUCT} that are evaluated (at most {MAX_LEGS} jobs may run): remove vector values"
    )]
    CrossProductTooLarge { count: u128 },
}

/// One `include` entry: the part that filters legs and the values it adds.
#[derive(Debug)]
struct Include {
    filter: EntryFilter,
    /// The filter keys and values, for a leg made from an unmatched entry.
    filter_values: Object,
    extras: Object,
}

impl Include {
    /// The leg an unmatched entry becomes: its filter keys, then its extras.
    fn as_leg(&self) -> Leg {
        let mut leg = self.filter_values.clone();
        for (k, v) in self.extras.iter() {
            leg.insert(k, v.clone());
        }
        leg
    }
}

/// The matrix mapping, checked and split into its three parts.
#[derive(Debug, Default)]
struct MatrixSpec<'m> {
    vectors: Vec<(&'m str, &'m [Value])>,
    includes: Vec<Include>,
    excludes: Vec<EntryFilter>,
}

/// Expands an evaluated `strategy.matrix` mapping into its legs, in GitHub's order:
/// the remaining cross-product legs first, then one leg per unmatched `include` entry.
///
/// Errors follow GitHub's validation: a vector that is not a non-empty array, `include`
/// or `exclude` that are not arrays of non-empty mappings, an `exclude` key that names no
/// vector, a matrix with neither vectors nor `include` entries, and more than
/// [`MAX_LEGS`] legs.
pub fn expand(matrix: &Value) -> Result<Vec<Leg>, MatrixError> {
    Ok(expand_legs(matrix)?
        .into_iter()
        .map(|(leg, _)| leg)
        .collect())
}

/// One leg and the display name of its job run.
#[derive(Debug, Clone)]
pub struct NamedLeg {
    /// `job_name (value, value, ...)` as GitHub shows it; see [`display_name`].
    pub name: String,
    pub matrix: Leg,
}

/// [`expand`], with the display name GitHub gives each leg's run. `job_name` is the
/// job's display name before the matrix (its literal `name`, else its id). The name
/// lists the vector values of a cross-product leg (values added by `include` are not
/// shown) and every value of a leg made from an unmatched `include` entry.
pub fn expand_named(matrix: &Value, job_name: &str) -> Result<Vec<NamedLeg>, MatrixError> {
    Ok(expand_legs(matrix)?
        .into_iter()
        .map(|(leg, shown)| NamedLeg {
            name: display_name(job_name, leg.values().take(shown)),
            matrix: leg,
        })
        .collect())
}

/// The legs, each with how many of its leading values its display name shows.
fn expand_legs(matrix: &Value) -> Result<Vec<(Leg, usize)>, MatrixError> {
    let object = matrix.as_object().ok_or(MatrixError::NotAnObject {
        kind: matrix.kind(),
    })?;
    let spec = MatrixSpec::parse(object)?;
    let product = spec.cross_product_size()?;

    let mut matched = vec![false; spec.includes.len()];
    let mut legs = Vec::new();
    for index in 0..product {
        let leg = spec.combination(index);
        if !spec.excludes.iter().any(|e| e.matches(&leg)) {
            legs.push((
                spec.with_include_extras(leg, &mut matched),
                spec.vectors.len(),
            ));
        }
    }
    legs.extend(
        spec.includes
            .iter()
            .zip(matched)
            .filter(|(_, matched)| !matched)
            .map(|(include, _)| {
                let leg = include.as_leg();
                let shown = leg.len();
                (leg, shown)
            }),
    );

    if legs.len() > MAX_LEGS {
        return Err(MatrixError::TooManyLegs { count: legs.len() });
    }
    Ok(legs)
}

impl<'m> MatrixSpec<'m> {
    fn parse(object: &'m Object) -> Result<Self, MatrixError> {
        let mut spec = MatrixSpec::default();
        let mut include = None;
        let mut exclude = None;
        // GitHub matches the two special keys case-sensitively.
        for (key, value) in object.iter() {
            match key {
                "include" => include = Some(value),
                "exclude" => exclude = Some(value),
                _ => {
                    let values = value.as_array().ok_or(MatrixError::VectorNotArray {
                        key: key.to_string(),
                        kind: value.kind(),
                    })?;
                    if values.is_empty() {
                        return Err(MatrixError::EmptyVector {
                            key: key.to_string(),
                        });
                    }
                    spec.vectors.push((key, values));
                }
            }
        }
        let include_items = match include {
            Some(include) => include.as_array().ok_or(MatrixError::IncludeNotArray {
                kind: include.kind(),
            })?,
            None => &[],
        };
        if spec.vectors.is_empty() && include_items.is_empty() {
            return Err(MatrixError::NoVectors);
        }
        spec.includes = include_items
            .iter()
            .enumerate()
            .map(|(index, item)| spec.parse_include(index, item))
            .collect::<Result<_, _>>()?;
        if let Some(exclude) = exclude {
            let items = exclude.as_array().ok_or(MatrixError::ExcludeNotArray {
                kind: exclude.kind(),
            })?;
            spec.excludes = items
                .iter()
                .enumerate()
                .map(|(index, item)| spec.parse_exclude(index, item))
                .collect::<Result<_, _>>()?;
        }
        Ok(spec)
    }

    fn is_vector(&self, key: &str) -> bool {
        let key = fold_key(key);
        self.vectors.iter().any(|(name, _)| fold_key(name) == key)
    }

    fn parse_include(&self, index: usize, item: &Value) -> Result<Include, MatrixError> {
        let entry = item.as_object().ok_or(MatrixError::IncludeItemNotObject {
            index,
            kind: item.kind(),
        })?;
        if entry.is_empty() {
            return Err(MatrixError::EmptyInclude { index });
        }
        let mut include = Include {
            filter: EntryFilter::default(),
            filter_values: Object::new(),
            extras: Object::new(),
        };
        for (key, value) in entry.iter() {
            if self.is_vector(key) {
                include.filter.add(key, value);
                include.filter_values.insert(key, value.clone());
            } else {
                include.extras.insert(key, value.clone());
            }
        }
        Ok(include)
    }

    fn parse_exclude(&self, index: usize, item: &Value) -> Result<EntryFilter, MatrixError> {
        let entry = item.as_object().ok_or(MatrixError::ExcludeItemNotObject {
            index,
            kind: item.kind(),
        })?;
        if entry.is_empty() {
            return Err(MatrixError::EmptyExclude { index });
        }
        let mut filter = EntryFilter::default();
        for (key, value) in entry.iter() {
            if !self.is_vector(key) {
                return Err(MatrixError::ExcludeUnknownKey {
                    key: key.to_string(),
                });
            }
            filter.add(key, value);
        }
        Ok(filter)
    }

    /// The number of cross-product combinations (0 without vectors), or an error past
    /// [`MAX_CROSS_PRODUCT`].
    fn cross_product_size(&self) -> Result<usize, MatrixError> {
        if self.vectors.is_empty() {
            return Ok(0);
        }
        let count = self.vectors.iter().fold(1u128, |n, (_, values)| {
            n.saturating_mul(values.len() as u128)
        });
        usize::try_from(count)
            .ok()
            .filter(|n| *n <= MAX_CROSS_PRODUCT)
            .ok_or(MatrixError::CrossProductTooLarge { count })
    }

    /// `leg` with the extras of every `include` entry whose filter matches it (later
    /// entries overwrite earlier ones), noting which entries matched.
    fn with_include_extras(&self, mut leg: Leg, matched: &mut [bool]) -> Leg {
        let mut extras = Object::new();
        for (include, matched) in self.includes.iter().zip(matched.iter_mut()) {
            if include.filter.matches(&leg) {
                *matched = true;
                for (k, v) in include.extras.iter() {
                    extras.insert(k, v.clone());
                }
            }
        }
        for (k, v) in extras.iter() {
            leg.insert(k, v.clone());
        }
        leg
    }

    /// The `index`-th combination of the cross product, first vector varying slowest.
    fn combination(&self, index: usize) -> Leg {
        let mut leg = Object::with_capacity(self.vectors.len());
        let mut rest = index;
        let mut block: usize = self.vectors.iter().map(|(_, v)| v.len()).product();
        for (key, values) in &self.vectors {
            block /= values.len();
            leg.insert(*key, values[rest / block].clone());
            rest %= block;
        }
        leg
    }
}

/// act's `--matrix key:value` filter: keeps the legs whose value for every filtered key
/// is one of the values given for that key. Several values for one key are
/// alternatives; different keys must all hold; a leg without the key passes. Keys
/// compare ignoring case (as matrix lookups do), values as text: strings as they are,
/// numbers as GitHub prints them (`8`, `1.5`), booleans as `true` / `false`, other
/// values as JSON.
pub fn filter(legs: Vec<Leg>, filters: &[(String, String)]) -> Vec<Leg> {
    if filters.is_empty() {
        return legs;
    }
    legs.into_iter()
        .filter(|leg| {
            leg.iter().all(|(key, value)| {
                let mut allowed = filters
                    .iter()
                    .filter(|(k, _)| fold_key(k) == fold_key(key))
                    .peekable();
                if allowed.peek().is_none() {
                    return true;
                }
                let text = value_text(value);
                allowed.any(|(_, v)| *v == text)
            })
        })
        .collect()
}

/// A matrix value as the `--matrix` filter compares it.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => match number_to_json(*n) {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        },
        other => other.to_json().to_string(),
    }
}

/// Structural equality of two values, as JSON would compare them: numbers by value
/// (`NaN` equals nothing), strings exactly (case matters), arrays item by item, objects
/// by their entries regardless of order (keys looked up ignoring case, as [`Object`]
/// does). Unlike the expression `==`, arrays and objects compare by content.
pub fn deep_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => a == b,
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| deep_equal(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|other| deep_equal(v, other)))
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
