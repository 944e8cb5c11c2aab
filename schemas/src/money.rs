//! Money: a decimal amount and its unit. Never a float.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Scale used on the wire (Avro `decimal(38, 10)`) and in ClickHouse (`Decimal(38, 10)`).
pub const MONEY_SCALE: u32 = 10;

/// 10^k for k up to [`MONEY_SCALE`].
const POW10: [i128; MONEY_SCALE as usize + 1] = {
    let mut p = [1i128; MONEY_SCALE as usize + 1];
    let mut k = 1;
    while k < p.len() {
        p[k] = p[k - 1] * 10;
        k += 1;
    }
    p
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Amount, e.g. `0.0075`. Providers that report a charge as a negative number
    /// (Twilio) are normalised to positive cost.
    pub amount: Decimal,
    /// ISO 4217 code, upper case (`USD`).
    pub unit: String,
}

impl Money {
    /// `amount` rounded half-even to [`MONEY_SCALE`] places when it is finer (as the wire's
    /// `decimal(38, 10)` and ClickHouse's `Decimal(38, 10)` keep it, so that an event is the
    /// same after its Avro round trip), `unit` upper-cased.
    pub fn new(amount: Decimal, unit: impl Into<String>) -> Self {
        // Found by fuzzing (fuzz/ target `provider`): a Twilio `Price` of 28 significant digits
        // (-0.0079088888888888888888888889) was kept whole in the event and rounded on the wire.
        let amount = if amount.scale() > MONEY_SCALE { amount.round_dp(MONEY_SCALE) } else { amount };
        // upper-cased in place (`to_ascii_uppercase` was a second allocation per amount)
        let mut unit = unit.into();
        unit.make_ascii_uppercase();
        Money { amount, unit }
    }

    /// The amount as an `i128` mantissa at [`MONEY_SCALE`] (rounded half-even if finer),
    /// or `None` when it does not fit the wire type `decimal(38, 10)` (|amount| ≥ 10^28).
    pub fn checked_mantissa_at_scale(&self) -> Option<i128> {
        // Not `Decimal::rescale`: it cannot hold amounts ≥ 2^96 / 10^10 at scale 10 and then
        // silently keeps a smaller scale, so the mantissa would be read 10^k times too small.
        // (rounded only when finer: every decoded amount is at scale 10 or coarser, and
        // `round_dp` and `checked_pow` were ~100 instructions a call, three calls an event
        // with a cost in the aggregator; BENCHMARKS.md §1b)
        let d = if self.amount.scale() <= MONEY_SCALE { self.amount } else { self.amount.round_dp(MONEY_SCALE) };
        let p = *POW10.get((MONEY_SCALE - d.scale()) as usize)?;
        // A mantissa of 64 bits (nearly every price) times at most 10^10 is below 2^97: one
        // multiplication, no overflow to check (`checked_mul` of two `i128` is a library call,
        // ~60 instructions, four calls an event with a cost in the aggregator; BENCHMARKS.md §1b).
        let m = match (i64::try_from(d.mantissa()), i64::try_from(p)) {
            (Ok(m), Ok(p)) => i128::from(m) * i128::from(p),
            _ => d.mantissa().checked_mul(p)?,
        };
        (m.unsigned_abs() < 10u128.pow(38)).then_some(m)
    }

    /// [`Money::checked_mantissa_at_scale`], saturated to ±(10^38 − 1) when out of range
    /// (never for decoded events: the decoder and the encoder refuse such amounts).
    pub fn mantissa_at_scale(&self) -> i128 {
        const MAX: i128 = 10i128.pow(38) - 1;
        self.checked_mantissa_at_scale()
            .unwrap_or(if self.amount.is_sign_negative() { -MAX } else { MAX })
    }

    /// The amount `mantissa` × 10^-[`MONEY_SCALE`]; `None` when a `Decimal` cannot hold it
    /// (more than 28 significant digits).
    pub fn from_mantissa(mantissa: i128, unit: impl Into<String>) -> Option<Self> {
        // Trailing zeros first: 2.5e19 is 2.5e29 at scale 10, beyond Decimal's 96-bit mantissa.
        // (in 64 bits when the mantissa fits, as nearly every price does: a 128-bit division
        // is a library call, ~120 instructions each, up to ten per amount; BENCHMARKS.md §1b)
        let (mut m, mut scale) = (mantissa, MONEY_SCALE);
        if let Ok(mut small) = i64::try_from(m) {
            while scale > 0 && small % 10 == 0 && small != 0 {
                small /= 10;
                scale -= 1;
            }
            m = i128::from(small);
        } else {
            while scale > 0 && m % 10 == 0 && m != 0 {
                m /= 10;
                scale -= 1;
            }
        }
        // no trailing zeros are left above scale 0 (what `normalize` would strip, another
        // division loop), and zero is at scale 0 as `normalize` leaves it
        if m == 0 {
            scale = 0;
        }
        Decimal::try_from_i128_with_scale(m, scale).ok().map(|d| Money::new(d, unit))
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

    /// An amount finer than the wire's scale is the wire's from the start: the same after its
    /// mantissa's round trip (fuzz/ target `provider`, a Twilio price of 28 digits).
    #[test]
    fn finer_amounts_are_rounded_to_the_wire_scale() {
        for (s, want) in [("0.0079088888888888888888888889", "0.0079088889"), ("0.00000000005", "0"), ("0.00000000015", "0.0000000002"), ("1.00000000004999", "1")] {
            let m = Money::new(Decimal::from_str(s).unwrap(), "USD");
            assert_eq!(m.amount, Decimal::from_str(want).unwrap(), "{s}");
            assert_eq!(Money::from_mantissa(m.mantissa_at_scale(), "USD").unwrap(), m, "{s}");
        }
    }

    #[test]
    fn large_amounts_keep_their_value_at_scale() {
        // Found by fuzzing (fuzz/ target `avro`): `Decimal::rescale` left 25755351112402482227
        // at scale 9, so the wire carried 2575535111240248222.7.
        for s in ["25755351112402482227", "-7922816251426433759.3543950335", "9999999999999999999999999999", "0.00000000005", "0.00000000015"] {
            let m = Money::new(Decimal::from_str(s).unwrap(), "USD");
            let mantissa = m.checked_mantissa_at_scale().unwrap();
            let back = Money::from_mantissa(mantissa, "USD").unwrap();
            assert_eq!(back.amount, m.amount.round_dp(MONEY_SCALE), "{s}");
        }
        assert_eq!(Money::new(Decimal::from_str("25755351112402482227").unwrap(), "USD").mantissa_at_scale(), 257_553_511_124_024_822_270_000_000_000);
    }

    /// The 64-bit path and the 128-bit one give the same amounts, on both sides of the
    /// boundary: checked against `Decimal` built from the mantissa as it is (each of these fits
    /// Decimal's 96 bits at scale 10).
    #[test]
    fn mantissas_near_the_64_bit_bound_keep_their_value() {
        let big = i128::from(i64::MAX);
        for m in [0, 1, -1, 10, -10, 75_000_000, 10_000_000_000, -10_000_000_000, 123_450_000_000, big, big + 1, big - 7, big + 3, -big, -big - 1, -big - 2, big * 10, -big * 10, (big + 1) * 10, 90_000_000_000_000_000_000] {
            let want = Decimal::try_from_i128_with_scale(m, MONEY_SCALE).unwrap().normalize();
            let got = Money::from_mantissa(m, "USD").unwrap();
            assert_eq!(got.amount, want, "{m}");
            assert_eq!(got.amount.scale(), want.scale(), "{m}");
            assert_eq!(got.mantissa_at_scale(), m, "{m}");
        }
    }

    proptest::proptest! {
        /// Any mantissa, and any amount at any scale: what `normalize` and `round_dp` (the
        /// former way, kept here as the truth) give, value and scale.
        #[test]
        fn conversions_equal_normalize_and_round_dp(m in proptest::prop_oneof![-1_000_000_000_000i128..1_000_000_000_000, proptest::strategy::Strategy::prop_map(proptest::prelude::any::<i64>(), i128::from), -(10i128.pow(28))..10i128.pow(28)], zeros in 0u32..12, scale in 0u32..=28) {
            let m = m.checked_mul(10i128.pow(zeros)).unwrap_or(m);
            // (trailing zeros stripped first, in 128 bits: a mantissa beyond 96 bits with zeros
            // to spare is an amount `Decimal` holds)
            let (mut stripped, mut at) = (m, MONEY_SCALE);
            while at > 0 && stripped % 10 == 0 && stripped != 0 {
                stripped /= 10;
                at -= 1;
            }
            let want = Decimal::try_from_i128_with_scale(stripped, at).ok().map(|d| d.normalize());
            let got = Money::from_mantissa(m, "USD").map(|x| x.amount);
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert_eq!(got.map(|d| (d.scale(), d.is_sign_negative())), want.map(|d| (d.scale(), d.is_sign_negative())));
            if let Ok(amount) = Decimal::try_from_i128_with_scale(m, scale) {
                let old = (|| {
                    let d = amount.round_dp(MONEY_SCALE);
                    let m = d.mantissa().checked_mul(10i128.checked_pow(MONEY_SCALE - d.scale())?)?;
                    (m.unsigned_abs() < 10u128.pow(38)).then_some(m)
                })();
                proptest::prop_assert_eq!(Money::new(amount, "USD").checked_mantissa_at_scale(), old);
            }
        }
    }

    #[test]
    fn amounts_beyond_decimal_38_10_are_refused() {
        for s in ["10000000000000000000000000000", "-79228162514264337593543950335"] {
            let m = Money::new(Decimal::from_str(s).unwrap(), "USD");
            assert_eq!(m.checked_mantissa_at_scale(), None, "{s}");
            assert_eq!(m.mantissa_at_scale().unsigned_abs(), 10u128.pow(38) - 1);
        }
        assert_eq!(Money::from_mantissa(10i128.pow(38) - 1, "USD"), None, "38 significant digits");
    }
}
