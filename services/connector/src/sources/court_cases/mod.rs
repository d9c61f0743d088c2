//! The court-cases source: mapping, parsing and its tests.

pub mod mapping;
pub mod parse;
#[cfg(test)]
mod tests;
