//! Money: a decimal amount and its unit. Never a float.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Scale used on the wire (Avro `decimal(38, 10)`) and in ClickHouse (`Decimal(38, 10)`).
pub const MONEY_SCALE: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Amount, e.g. `0.0075`. Providers that report a charge as a negative number
    /// (Twilio) are normalised to positive cost.
    pub amount: Decimal,
    /// ISO 4217 code, upper case (`USD`).
    pub unit: String,
}

impl Money {
    pub fn new(amount: Decimal, unit: impl Into<String>) -> Self {
        Money { amount, unit: unit.into().to_ascii_uppercase() }
    }

    /// The amount as an `i128` mantissa at [`MONEY_SCALE`] (rounded half-even if finer).
    pub fn mantissa_at_scale(&self) -> i128 {
        let mut d = self.amount;
        d.rescale(MONEY_SCALE);
        d.mantissa()
    }

    pub fn from_mantissa(mantissa: i128, unit: impl Into<String>) -> Option<Self> {
        Decimal::try_from_i128_with_scale(mantissa, MONEY_SCALE)
            .ok()
            .map(|d| Money::new(d.normalize(), unit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn mantissa_round_trip_keeps_value() {
        let m = Money::new(Decimal::from_str("0.0075").unwrap(), "usd");
        assert_eq!(m.unit, "USD");
        assert_eq!(m.mantissa_at_scale(), 75_000_000);
        let back = Money::from_mantissa(m.mantissa_at_scale(), "USD").unwrap();
        assert_eq!(back, m);
    }
}
