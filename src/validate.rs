//! Checking configuration values against their documented ranges.
//!
//! Every config section has a `validate()` that returns a [`FieldError`] naming the field
//! (as a dotted path from the section) and the rule it broke; a config root prefixes the
//! section's name ([`FieldError::within`]) and the file's name, so that a user reads
//! `configs/x.toml: sim.executors: must be in 1..=100000, found 4000000000`.

use std::fmt::Display;

use thiserror::Error;

/// A value outside its documented range, or an inconsistent combination of values.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{field}: {msg}")]
pub struct FieldError {
    /// Dotted path of the field, from the section that validated it.
    pub field: String,
    pub msg: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, msg: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            msg: msg.into(),
        }
    }

    /// The same error seen from the enclosing section: `sim` + `executors` → `sim.executors`.
    pub fn within(mut self, section: &str) -> Self {
        self.field = if self.field.is_empty() {
            section.to_string()
        } else {
            format!("{section}.{}", self.field)
        };
        self
    }
}

/// `value` must lie in `lo..=hi`.
pub fn in_range<T: PartialOrd + Display>(
    field: &str,
    value: T,
    lo: T,
    hi: T,
) -> Result<(), FieldError> {
    if value < lo || value > hi {
        return Err(FieldError::new(
            field,
            format!("must be in {lo}..={hi}, found {value}"),
        ));
    }
    Ok(())
}

/// `value` must be a finite number in `lo..=hi` (NaN and infinities are refused).
pub fn finite_in(field: &str, value: f64, lo: f64, hi: f64) -> Result<(), FieldError> {
    if !value.is_finite() {
        return Err(FieldError::new(
            field,
            format!("must be a finite number, found {value}"),
        ));
    }
    if value < lo || value > hi {
        return Err(FieldError::new(
            field,
            format!(
                "must be in {}..={}, found {}",
                short(lo),
                short(hi),
                short(value)
            ),
        ));
    }
    Ok(())
}

/// A float as a person writes it: `1e308`, not its 309 digits; `0.5` and `-10` as usual.
fn short(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e15).contains(&a) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_field_and_the_limit() {
        let e = in_range("executors", 0u32, 1, 100_000)
            .unwrap_err()
            .within("sim");
        assert_eq!(
            e.to_string(),
            "sim.executors: must be in 1..=100000, found 0"
        );
        let e = finite_in("alpha", f64::NAN, -10.0, 10.0).unwrap_err();
        assert_eq!(e.to_string(), "alpha: must be a finite number, found NaN");
        assert!(finite_in("alpha", 10.0, -10.0, 10.0).is_ok());
        let e = finite_in("alpha", 1e308, -10.0, 10.0).unwrap_err();
        assert_eq!(e.to_string(), "alpha: must be in -10..=10, found 1e308");
        let e = finite_in("scale", 1e-9, 1e-3, 1e12).unwrap_err();
        assert_eq!(
            e.to_string(),
            "scale: must be in 0.001..=1000000000000, found 1e-9"
        );
    }
}
