//! Small result sets of report queries, read into plain values.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::logical_expr::{Expr, cast};
use datafusion::prelude::DataFrame;
use funnelpulse_engine::Context;

/// One cell of a report query.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// SQL null.
    Null,
    /// A column read as `Kind::Int` (Int64).
    Int(i64),
    /// A column read as `Kind::Float` (Float64).
    Float(f64),
    /// A column read as `Kind::Text` (Utf8).
    Text(String),
}

impl Cell {
    /// The value as an integer: floats truncated, null and text 0.
    pub fn int(&self) -> i64 {
        match self {
            Cell::Int(v) => *v,
            Cell::Float(v) => *v as i64,
            _ => 0,
        }
    }

    /// The value as a float: null and text 0.0.
    pub fn float(&self) -> f64 {
        match self {
            Cell::Float(v) => *v,
            Cell::Int(v) => *v as f64,
            _ => 0.0,
        }
    }

    /// The value as text (numbers formatted); None for null.
    pub fn text(&self) -> Option<String> {
        match self {
            Cell::Text(v) => Some(v.clone()),
            Cell::Null => None,
            Cell::Int(v) => Some(v.to_string()),
            Cell::Float(v) => Some(v.to_string()),
        }
    }
}

/// The kind a selected column is cast to before it is read.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Cast to Int64, read as `Cell::Int`.
    Int,
    /// Cast to Float64, read as `Cell::Float`.
    Float,
    /// Cast to Utf8, read as `Cell::Text`.
    Text,
}

/// Report queries, planned first and then run at once. Each is a small job
/// whose time is mostly Ballista's round trip, so running them together
/// costs a few round trips instead of one each.
#[derive(Default)]
pub struct Queries {
    planned: Vec<(DataFrame, Vec<(Expr, Kind)>)>,
}

/// A planned query: its place among the answers.
#[derive(Debug, Clone, Copy)]
pub struct Query(usize);

/// Jobs in flight at once: enough to hide the round trips, few enough not
/// to flood a shared scheduler.
const AT_ONCE: usize = 8;

impl Queries {
    /// Plans `df` with `columns` (expression, kind) selected, to run with the others.
    pub fn add(&mut self, df: DataFrame, columns: Vec<(Expr, Kind)>) -> Query {
        self.planned.push((df, columns));
        Query(self.planned.len() - 1)
    }

    /// Runs every planned query, [`AT_ONCE`] at a time.
    pub async fn run(self) -> funnelpulse_engine::Result<Answers> {
        use futures::{StreamExt, TryStreamExt};
        let answers = futures::stream::iter(self.planned.into_iter().map(|(df, columns)| rows(df, columns)))
            .buffered(AT_ONCE)
            .try_collect()
            .await?;
        Ok(Answers(answers))
    }
}

/// The rows of every planned query.
pub struct Answers(Vec<Vec<Vec<Cell>>>);

impl Answers {
    /// The rows of `query` (each query's answer is taken once).
    pub fn take(&mut self, query: Query) -> Vec<Vec<Cell>> {
        std::mem::take(&mut self.0[query.0])
    }
}

/// Runs `df` with `columns` (expression, kind) selected and returns its rows.
pub async fn rows(df: DataFrame, columns: Vec<(Expr, Kind)>) -> funnelpulse_engine::Result<Vec<Vec<Cell>>> {
    let kinds: Vec<Kind> = columns.iter().map(|c| c.1).collect();
    let selected: Vec<Expr> = columns
        .into_iter()
        .enumerate()
        .map(|(i, (e, kind))| {
            let to = match kind {
                Kind::Int => DataType::Int64,
                Kind::Float => DataType::Float64,
                Kind::Text => DataType::Utf8,
            };
            cast(e, to).alias(format!("c{i}"))
        })
        .collect();
    let batches = df.select(selected)?.collect().await?;
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let cells = kinds
                .iter()
                .enumerate()
                .map(|(i, kind)| {
                    let column = batch.column(i);
                    if column.is_null(row) {
                        return Ok(Cell::Null);
                    }
                    Ok(match kind {
                        Kind::Int => Cell::Int(column.as_primitive_opt::<Int64Type>().context("i64")?.value(row)),
                        Kind::Float => Cell::Float(column.as_primitive_opt::<Float64Type>().context("f64")?.value(row)),
                        Kind::Text => Cell::Text(column.as_string_opt::<i32>().context("text")?.value(row).to_string()),
                    })
                })
                .collect::<funnelpulse_engine::Result<Vec<Cell>>>()?;
            out.push(cells);
        }
    }
    Ok(out)
}
