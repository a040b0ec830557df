//! custos library
