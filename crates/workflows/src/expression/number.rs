//! Numbers and strings, both ways, as GitHub's evaluator converts them: string → number
//! follows JavaScript's `Number(s)`, number → string follows .NET's `"G15"` format.

/// JavaScript's `Number(s)`: surrounding whitespace is ignored, `""` is `0`, `0x`/`0o`/`0b`
/// prefixes (unsigned) are allowed, `Infinity` may carry a sign, anything else is `NaN`.
pub fn parse_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_whitespace);
    if t.is_empty() {
        return 0.0;
    }
    if let Some(n) = parse_prefixed_integer(t) {
        return n;
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    if is_decimal_literal(t) {
        t.parse::<f64>().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

fn is_js_whitespace(c: char) -> bool {
    c.is_whitespace() || c == '\u{FEFF}'
}

/// `0x1F`, `0o17`, `0b101`: `Some(value)` when `t` has such a prefix, `Some(NaN)` when the
/// digits after it are not valid, `None` when there is no prefix.
fn parse_prefixed_integer(t: &str) -> Option<f64> {
    let bytes = t.as_bytes();
    if bytes.len() < 2 || bytes[0] != b'0' {
        return None;
    }
    let radix = match bytes[1] {
        b'x' | b'X' => 16,
        b'o' | b'O' => 8,
        b'b' | b'B' => 2,
        _ => return None,
    };
    let digits = &t[2..];
    if digits.is_empty() {
        return Some(f64::NAN);
    }
    let mut value = 0.0_f64;
    for c in digits.chars() {
        match c.to_digit(radix) {
            Some(d) => value = value * f64::from(radix) + f64::from(d),
            None => return Some(f64::NAN),
        }
    }
    Some(value)
}

/// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`
fn is_decimal_literal(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut mantissa_digits = i - int_start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        mantissa_digits += i - frac_start;
    }
    if mantissa_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return false;
        }
    }
    i == b.len()
}

/// .NET `double.ToString("G15")`: at most 15 significant digits, no trailing zeros,
/// fixed notation for exponents -5 < e < 15, otherwise `d.dddE+XX`; `-0` is `"0"`;
/// non-finite values are spelled `NaN`, `Infinity`, `-Infinity`.
pub fn format_number(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if n == 0.0 {
        return "0".into();
    }
    // Rounded to 15 significant digits: "d.dddddddddddddde<exp>".
    let sci = format!("{:.14e}", n.abs());
    let (mantissa, exponent) = match sci.split_once('e') {
        Some(parts) => parts,
        None => return sci,
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let sign = if n < 0.0 { "-" } else { "" };
    if exponent > -5 && exponent < 15 {
        format!("{sign}{}", fixed_notation(digits, exponent))
    } else {
        let (first, rest) = digits.split_at(1);
        let dot = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{first}{dot}{rest}E{exp_sign}{:02}", exponent.abs())
    }
}

/// Places the decimal point in significant `digits` (first digit at 10^`exponent`).
fn fixed_notation(digits: &str, exponent: i32) -> String {
    if exponent < 0 {
        let zeros = "0".repeat((-exponent - 1) as usize);
        return format!("0.{zeros}{digits}");
    }
    let int_len = exponent as usize + 1;
    if digits.len() <= int_len {
        format!("{digits}{}", "0".repeat(int_len - digits.len()))
    } else {
        format!("{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g15_matches_dotnet() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (1.0, "1"),
            (-2.0, "-2"),
            (0.5, "0.5"),
            (-0.5, "-0.5"),
            (123456.789, "123456.789"),
            (0.845_512_408_225_57, "0.84551240822557"),
            (1.2e-2, "0.012"),
            (255.0, "255"),
            (1234567890.0, "1234567890"),
            (12345678901234567890.0, "1.23456789012346E+19"),
            (1e15, "1E+15"),
            (123456789012345.0, "123456789012345"),
            (0.0001, "0.0001"),
            (0.00001, "1E-05"),
            (1.5e-7, "1.5E-07"),
            (1e21, "1E+21"),
            (0.1 + 0.2, "0.3"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (n, want) in cases {
            assert_eq!(format_number(*n), *want, "formatting {n:e}");
        }
    }

    #[test]
    fn string_to_number_follows_javascript() {
        let cases: &[(&str, f64)] = &[
            ("", 0.0),
            ("  ", 0.0),
            (" 123456.789 ", 123456.789),
            (" +1 ", 1.0),
            ("-.5", -0.5),
            ("1.", 1.0),
            ("1e2", 100.0),
            ("1E-1", 0.1),
            (" 0xff ", 255.0),
            ("0XFF", 255.0),
            ("0o10", 8.0),
            ("0b101", 5.0),
            (" Infinity ", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
        ];
        for (s, want) in cases {
            assert_eq!(parse_number(s), *want, "parsing {s:?}");
        }
        for s in [
            "abc", "-0xff", "0x", "1e", ".", "inf", "NaN", "1_0", "0x1g", "- 1", "1 2",
        ] {
            assert!(parse_number(s).is_nan(), "{s:?} should be NaN");
        }
    }
}
