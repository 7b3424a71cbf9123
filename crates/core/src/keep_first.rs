//! `funnelpulse_keep_first(price, category_id, brand, category_code)`: the
//! kept row of a silver duplicate group, in one pass.
//!
//! Silver keeps, per de-duplication key, the row that sorts first by price,
//! then category_id, brand, category_code (ascending, nulls last); rows equal
//! in all four are identical. DataFusion's `first_value(… ORDER BY …)` gives
//! that row, but for string values it has no grouped accumulator and falls
//! back to one boxed accumulator per group, several times slower. This
//! aggregate keeps the best four values per group in plain vectors and
//! returns them as a struct.
//!
//! It travels to schedulers and executors by name: the codecs of
//! `funnelpulse-rawcsv` decode [`KEEP_FIRST`] into [`keep_first_udaf`].
//!
//! Semantics: docs/semantics.md#de-duplication

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray, StringViewArray, StructArray,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type, Int64Type};
use datafusion::common::{ScalarValue, exec_err, not_impl_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, Expr, GroupsAccumulator, Signature, TypeSignature, Volatility,
};

/// The aggregate's name in plans (and on the wire).
pub const KEEP_FIRST: &str = "funnelpulse_keep_first";

/// The struct fields it returns, in argument order.
pub const KEPT_FIELDS: [&str; 4] = crate::silver::DEDUP_CARRIED;

/// The aggregate, ready to call or register.
pub fn keep_first_udaf() -> Arc<AggregateUDF> {
    Arc::new(AggregateUDF::new_from_impl(KeepFirst::new()))
}

/// `funnelpulse_keep_first(price, category_id, brand, category_code)`.
pub fn keep_first(price: Expr, category_id: Expr, brand: Expr, category_code: Expr) -> Expr {
    keep_first_udaf().call(vec![price, category_id, brand, category_code])
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct KeepFirst {
    signature: Signature,
}

impl KeepFirst {
    fn new() -> Self {
        // Strings as the table holds them: Parquet reads give Utf8View.
        let with_strings = |s: DataType| TypeSignature::Exact(vec![DataType::Float64, DataType::Int64, s.clone(), s]);
        let signature = Signature::one_of(
            vec![with_strings(DataType::Utf8View), with_strings(DataType::Utf8)],
            Volatility::Immutable,
        );
        Self { signature }
    }
}

fn kept_fields(string_type: &DataType) -> Fields {
    let types = [DataType::Float64, DataType::Int64, string_type.clone(), string_type.clone()];
    KEPT_FIELDS.iter().zip(types).map(|(name, t)| Field::new(*name, t, true)).collect()
}

impl AggregateUDFImpl for KeepFirst {
    fn name(&self) -> &str {
        KEEP_FIRST
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(kept_fields(&arg_types[2])))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        // The partial state is the kept row itself, one column per value.
        let string_type = args.input_fields[2].data_type();
        Ok(kept_fields(string_type)
            .iter()
            .map(|f| Arc::new(Field::new(format!("{}[{}]", args.name, f.name()), f.data_type().clone(), true)))
            .collect())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(OneGroup(KeptRows::new(args.exprs[2].data_type(args.schema)?))))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(KeptRows::new(args.exprs[2].data_type(args.schema)?)))
    }
}

/// One kept row.
#[derive(Debug, Clone)]
struct Kept {
    price: Option<f64>,
    category_id: Option<i64>,
    brand: Option<String>,
    category_code: Option<String>,
}

impl Kept {
    fn string_bytes(&self) -> usize {
        self.brand.as_ref().map_or(0, String::len) + self.category_code.as_ref().map_or(0, String::len)
    }
}

/// Ascending with nulls last, as `ORDER BY … NULLS LAST`.
fn nulls_last<T: ?Sized>(a: Option<&T>, b: Option<&T>, cmp: impl Fn(&T, &T) -> Ordering) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => cmp(a, b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// The four input (or state) columns of one batch.
struct Columns<'a> {
    price: &'a Float64Array,
    category_id: &'a Int64Array,
    brand: Strings<'a>,
    category_code: Strings<'a>,
}

enum Strings<'a> {
    Utf8(&'a StringArray),
    View(&'a StringViewArray),
}

impl<'a> Strings<'a> {
    fn new(array: &'a ArrayRef) -> Result<Self> {
        match array.data_type() {
            DataType::Utf8 => Ok(Self::Utf8(array.as_string::<i32>())),
            DataType::Utf8View => Ok(Self::View(array.as_string_view())),
            other => exec_err!("{KEEP_FIRST}: expected strings, got {other}"),
        }
    }

    fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            Self::Utf8(a) => a.is_valid(row).then(|| a.value(row)),
            Self::View(a) => a.is_valid(row).then(|| a.value(row)),
        }
    }
}

impl<'a> Columns<'a> {
    fn new(arrays: &'a [ArrayRef]) -> Result<Self> {
        if arrays.len() != 4 {
            return exec_err!("{KEEP_FIRST} takes 4 columns, got {}", arrays.len());
        }
        Ok(Self {
            price: arrays[0].as_primitive::<Float64Type>(),
            category_id: arrays[1].as_primitive::<Int64Type>(),
            brand: Strings::new(&arrays[2])?,
            category_code: Strings::new(&arrays[3])?,
        })
    }

    fn price(&self, row: usize) -> Option<f64> {
        self.price.is_valid(row).then(|| self.price.value(row))
    }

    fn category_id(&self, row: usize) -> Option<i64> {
        self.category_id.is_valid(row).then(|| self.category_id.value(row))
    }

    /// Whether `row` sorts before `kept` (floats in total order, as DataFusion sorts them).
    fn sorts_before(&self, row: usize, kept: &Kept) -> bool {
        nulls_last(self.price(row).as_ref(), kept.price.as_ref(), f64::total_cmp)
            .then_with(|| nulls_last(self.category_id(row).as_ref(), kept.category_id.as_ref(), Ord::cmp))
            .then_with(|| nulls_last(self.brand.get(row), kept.brand.as_deref(), Ord::cmp))
            .then_with(|| nulls_last(self.category_code.get(row), kept.category_code.as_deref(), Ord::cmp))
            == Ordering::Less
    }

    fn kept(&self, row: usize) -> Kept {
        Kept {
            price: self.price(row),
            category_id: self.category_id(row),
            brand: self.brand.get(row).map(str::to_owned),
            category_code: self.category_code.get(row).map(str::to_owned),
        }
    }
}

/// The kept row of each group so far.
#[derive(Debug)]
struct KeptRows {
    rows: Vec<Option<Kept>>,
    string_type: DataType,
    string_bytes: usize,
}

impl KeptRows {
    fn new(string_type: DataType) -> Self {
        Self { rows: Vec::new(), string_type, string_bytes: 0 }
    }

    /// Offers rows of `arrays` (values or partial states alike) to their groups.
    fn offer(
        &mut self,
        arrays: &[ArrayRef],
        groups: &[usize],
        filter: Option<&BooleanArray>,
        total: usize,
    ) -> Result<()> {
        if self.rows.len() < total {
            self.rows.resize(total, None);
        }
        let columns = Columns::new(arrays)?;
        for (row, &group) in groups.iter().enumerate() {
            if filter.is_some_and(|f| !f.is_valid(row) || !f.value(row)) {
                continue;
            }
            let better = match &self.rows[group] {
                None => true,
                Some(kept) => columns.sorts_before(row, kept),
            };
            if better {
                let kept = columns.kept(row);
                self.string_bytes += kept.string_bytes();
                if let Some(old) = self.rows[group].replace(kept) {
                    self.string_bytes -= old.string_bytes();
                }
            }
        }
        Ok(())
    }

    /// The four columns of `rows`.
    fn arrays(&self, rows: &[Option<Kept>]) -> Vec<ArrayRef> {
        let price: Float64Array = rows.iter().map(|k| k.as_ref().and_then(|k| k.price)).collect();
        let category_id: Int64Array = rows.iter().map(|k| k.as_ref().and_then(|k| k.category_id)).collect();
        let strings = |get: fn(&Kept) -> Option<&str>| -> ArrayRef {
            let values = rows.iter().map(|k| k.as_ref().and_then(get));
            match self.string_type {
                DataType::Utf8View => Arc::new(values.collect::<StringViewArray>()),
                _ => Arc::new(values.collect::<StringArray>()),
            }
        };
        vec![
            Arc::new(price),
            Arc::new(category_id),
            strings(|k| k.brand.as_deref()),
            strings(|k| k.category_code.as_deref()),
        ]
    }

    fn as_struct(&self, rows: &[Option<Kept>]) -> Result<StructArray> {
        Ok(StructArray::try_new(kept_fields(&self.string_type), self.arrays(rows), None)?)
    }

    fn take(&mut self, emit_to: EmitTo) -> Vec<Option<Kept>> {
        let taken = emit_to.take_needed(&mut self.rows);
        self.string_bytes = self.rows.iter().flatten().map(Kept::string_bytes).sum();
        taken
    }
}

impl GroupsAccumulator for KeptRows {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.offer(values, group_indices, opt_filter, total_num_groups)
    }

    fn merge_batch(&mut self, values: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        // The state is a kept row: merging is offering it like an input row.
        self.offer(values, group_indices, None, total_num_groups)
    }

    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        // Each row alone is its group's kept row. (Silver never filters inside
        // the aggregate; a filtered-out row has no state to stand for it.)
        if opt_filter.is_some() {
            return not_impl_err!("{KEEP_FIRST} with a FILTER clause");
        }
        Ok(values.to_vec())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let rows = self.take(emit_to);
        Ok(Arc::new(self.as_struct(&rows)?))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let rows = self.take(emit_to);
        Ok(self.arrays(&rows))
    }

    fn size(&self) -> usize {
        self.rows.capacity() * size_of::<Option<Kept>>() + self.string_bytes
    }
}

/// The same for an aggregate without GROUP BY (one group).
#[derive(Debug)]
struct OneGroup(KeptRows);

impl Accumulator for OneGroup {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let groups = vec![0; values.first().map_or(0, |a| a.len())];
        self.0.offer(values, &groups, None, 1)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let rows = self.0.rows.clone();
        let rows = if rows.is_empty() { vec![None] } else { rows };
        Ok(ScalarValue::Struct(Arc::new(self.0.as_struct(&rows)?)))
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let rows = if self.0.rows.is_empty() { vec![None] } else { self.0.rows.clone() };
        self.0.arrays(&rows).iter().map(|a| ScalarValue::try_from_array(a, 0)).collect()
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.0.size()
    }
}
