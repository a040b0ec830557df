//! Reading toml's span-preserving document tree (by hand, no serde: derived deserializers cost
//! about 100 KiB on armv7) into [`Fields`]: each table's values by key name, with their spans,
//! as the schema's tables allow them. Unknown keys and values of the wrong type are errors
//! (with the line of the key or value); nothing else is checked here.

use std::cell::Cell;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::schema::{Key, Section, Type, TOP};
use super::validate::Validator;

/// A value of the document tree, with its span.
type Value<'i> = Spanned<DeValue<'i>>;

/// A value as read, of the type its key's schema row wants.
pub(super) enum Raw {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Strings(Vec<String>),
    Table(Fields),
    Tables(Vec<Spanned<Fields>>),
}

/// The values of one table, found by key name. Every name asked for is a key of its section
/// (a name that is not is a mistake in custos, caught by the tests); which keys were asked
/// for is kept, so the tests also show that no key of a table is read and then ignored.
pub(super) struct Fields {
    pub section: &'static Section,
    values: Vec<(&'static str, Spanned<Raw>)>,
    read: Cell<u64>,
}

impl Fields {
    fn get(&self, name: &str) -> Option<&Spanned<Raw>> {
        let at = self.section.index(name);
        debug_assert!(
            at.is_some(),
            "`{name}` is not a key of {}",
            self.section.title
        );
        if let Some(i) = at {
            self.read.set(self.read.get() | 1 << i);
        }
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The row of `name` in this table's schema.
    pub fn key(&self, name: &str) -> Option<&'static Key> {
        self.section.key(name)
    }

    /// The value of `name`, as read (for keys that take more than one type).
    pub fn raw(&self, name: &str) -> Option<&Spanned<Raw>> {
        self.get(name)
    }

    /// Where `name` is written, when it is.
    pub fn span(&self, name: &str) -> Option<Range<usize>> {
        self.get(name).map(|v| v.span())
    }

    pub fn str(&self, name: &str) -> Option<Spanned<String>> {
        let v = self.get(name)?;
        match v.get_ref() {
            Raw::Str(s) => Some(Spanned::new(v.span(), s.clone())),
            _ => None,
        }
    }

    pub fn int(&self, name: &str) -> Option<Spanned<i64>> {
        let v = self.get(name)?;
        match v.get_ref() {
            Raw::Int(n) => Some(Spanned::new(v.span(), *n)),
            _ => None,
        }
    }

    pub fn float(&self, name: &str) -> Option<Spanned<f64>> {
        let v = self.get(name)?;
        match v.get_ref() {
            Raw::Float(f) => Some(Spanned::new(v.span(), *f)),
            _ => None,
        }
    }

    pub fn boolean(&self, name: &str) -> Option<Spanned<bool>> {
        let v = self.get(name)?;
        match v.get_ref() {
            Raw::Bool(b) => Some(Spanned::new(v.span(), *b)),
            _ => None,
        }
    }

    pub fn strings(&self, name: &str) -> Option<Spanned<Vec<String>>> {
        let v = self.get(name)?;
        match v.get_ref() {
            Raw::Strings(s) => Some(Spanned::new(v.span(), s.clone())),
            _ => None,
        }
    }

    pub fn table(&self, name: &str) -> Option<Spanned<&Fields>> {
        let v = self.get(name)?;
        match v.get_ref() {
            Raw::Table(t) => Some(Spanned::new(v.span(), t)),
            _ => None,
        }
    }

    /// An array of tables; absent is empty.
    pub fn tables(&self, name: &str) -> &[Spanned<Fields>] {
        match self.get(name).map(|v| v.get_ref()) {
            Some(Raw::Tables(t)) => t,
            _ => &[],
        }
    }

    /// Every key of this table and of the tables in it that was asked for: (title, key).
    #[cfg(test)]
    pub fn asked(&self, out: &mut Vec<(&'static str, &'static str)>) {
        let read = self.read.get();
        for (i, k) in self.section.keys.iter().enumerate() {
            if read & 1 << i != 0 {
                out.push((self.section.title, k.name));
            }
        }
        for (_, v) in &self.values {
            match v.get_ref() {
                Raw::Table(t) => t.asked(out),
                Raw::Tables(ts) => ts.iter().for_each(|t| t.get_ref().asked(out)),
                _ => {}
            }
        }
    }
}

/// How the keys of one table are named in errors: `{prefix}{key}{suffix}`, e.g.
/// `service.` + `start` + `` (service `web`)``.
#[derive(Clone)]
pub(super) struct Label {
    pub prefix: String,
    pub suffix: String,
}

impl Label {
    pub fn new(prefix: impl Into<String>, suffix: impl Into<String>) -> Self {
        Label {
            prefix: prefix.into(),
            suffix: suffix.into(),
        }
    }

    pub fn key(&self, name: &str) -> String {
        format!("{}{name}{}", self.prefix, self.suffix)
    }

    /// The label of a table `name` inside this one.
    fn inner(&self, name: &str) -> Label {
        Label::new(format!("{}{name}.", self.prefix), self.suffix.as_str())
    }
}

/// `a string`, `an integer`, ...: what a value is, for type errors.
fn what(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// How a table inside the one being read is read: given its key, its index in an array of
/// tables and the table itself.
type Nested<'n, 'v> =
    dyn FnMut(&mut Validator<'v>, &'static Key, usize, &DeTable<'_>) -> Fields + 'n;

impl<'v> Validator<'v> {
    /// The whole document.
    pub(super) fn read_config(&mut self, doc: &DeTable<'_>) -> Fields {
        let top = Label::new("", "");
        self.read(doc, &TOP, &top, &mut |v, key, i, t| match key.name {
            "service" => v.read_service(i, t),
            _ => v.read_plain(t, key, &top.inner(key.name)),
        })
    }

    /// A `[[service]]`: its keys are named by the service's name once it has one.
    fn read_service(&mut self, i: usize, t: &DeTable<'_>) -> Fields {
        let svc = t.get("name").and_then(|n| n.get_ref().as_str());
        let l = match svc {
            Some(n) => Label::new("service.", format!(" (service `{n}`)")),
            None => Label::new(format!("service[{i}]."), ""),
        };
        self.read(t, &super::schema::SERVICE, &l, &mut |v, key, j, t| {
            let inner = match (key.name, svc) {
                ("check", Some(n)) => {
                    Label::new(format!("service.check[{j}] (service `{n}`)."), "")
                }
                ("check", None) => Label::new(format!("service[{i}].check[{j}]."), ""),
                _ => l.inner(key.name),
            };
            v.read_plain(t, key, &inner)
        })
    }

    /// A table `key` whose own tables are named after it.
    fn read_plain(&mut self, t: &DeTable<'_>, key: &'static Key, label: &Label) -> Fields {
        let section = match key.ty {
            Type::Table(s) | Type::Tables(s, _) => s,
            _ => &TOP,
        };
        self.read(t, section, label, &mut |v, key, _, t| {
            v.read_plain(t, key, &label.inner(key.name))
        })
    }

    /// The values of `table`, read as `section` says; every other key is refused, with the list
    /// of the keys allowed there. Tables (and a check's `max`) are read before the plain values,
    /// so that errors on one line come in the order they always have.
    fn read(
        &mut self,
        table: &DeTable<'_>,
        section: &'static Section,
        label: &Label,
        nested: &mut Nested<'_, 'v>,
    ) -> Fields {
        let mut found: Vec<(&'static Key, &Value<'_>)> = Vec::new();
        for (k, v) in table.iter() {
            let name: &str = k.get_ref();
            match section.key(name) {
                Some(key) => found.push((key, v)),
                None => self.err(
                    Some(k.span()),
                    &label.key(name),
                    format!("unknown key; allowed here: {}", section.names()),
                ),
            }
        }
        let mut values = Vec::new();
        for first in [true, false] {
            for key in section.keys {
                let structured = matches!(
                    key.ty,
                    Type::Table(_) | Type::Tables(..) | Type::SizeOrCount
                );
                if structured != first {
                    continue;
                }
                let Some((_, v)) = found.iter().find(|(k, _)| k.name == key.name) else {
                    continue;
                };
                if let Some(raw) = self.value(key, v, label, nested) {
                    values.push((key.name, Spanned::new(v.span(), raw)));
                }
            }
        }
        Fields {
            section,
            values,
            read: Cell::new(0),
        }
    }

    /// One value, as its key's type says.
    fn value(
        &mut self,
        key: &'static Key,
        v: &Value<'_>,
        l: &Label,
        nested: &mut Nested<'_, 'v>,
    ) -> Option<Raw> {
        let name = key.name;
        match key.ty {
            Type::Str | Type::Path | Type::Word(_) | Type::CheckKind | Type::Dur(..) => {
                self.string(v, l, name).map(Raw::Str)
            }
            Type::Count(..) => self.integer(v, l, name).map(Raw::Int),
            Type::Number => self.float(v, l, name).map(Raw::Float),
            Type::Bool => self.boolean(v, l, name).map(Raw::Bool),
            Type::Argv | Type::Strings => self.strings(v, l, name).map(Raw::Strings),
            Type::SizeOrCount => self.int_or_string(v, l, name, "a size (\"64MiB\") or a count"),
            Type::CountOrUnlimited(_) => self.int_or_string(v, l, name, "a count or \"unlimited\""),
            Type::Table(_) => match v.get_ref() {
                DeValue::Table(t) => Some(Raw::Table(nested(self, key, 0, t))),
                _ => {
                    self.wrong_type(v, l, name, "a table");
                    None
                }
            },
            Type::Tables(..) => Some(Raw::Tables(self.tables(key, v, l, nested))),
        }
    }

    fn wrong_type(&mut self, v: &Value<'_>, label: &Label, name: &str, want: &str) {
        self.err(
            Some(v.span()),
            &label.key(name),
            format!("expected {want}, found {}", what(v.get_ref())),
        );
    }

    fn string(&mut self, v: &Value<'_>, label: &Label, name: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            _ => {
                self.wrong_type(v, label, name, "a string");
                None
            }
        }
    }

    fn boolean(&mut self, v: &Value<'_>, label: &Label, name: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(v, label, name, "true or false");
                None
            }
        }
    }

    /// An integer that fits in an i64 (hexadecimal, octal and binary included).
    fn int_of(&mut self, v: &Value<'_>, label: &Label, name: &str) -> Option<i64> {
        let DeValue::Integer(i) = v.get_ref() else {
            return None;
        };
        match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(
                    Some(v.span()),
                    &label.key(name),
                    format!("{i} is too large for an integer"),
                );
                None
            }
        }
    }

    fn integer(&mut self, v: &Value<'_>, label: &Label, name: &str) -> Option<i64> {
        if !v.get_ref().is_integer() {
            self.wrong_type(v, label, name, "an integer");
            return None;
        }
        self.int_of(v, label, name)
    }

    /// An integer, or a string (a size, a word), for keys that take either.
    fn int_or_string(&mut self, v: &Value<'_>, l: &Label, name: &str, want: &str) -> Option<Raw> {
        match v.get_ref() {
            DeValue::Integer(_) => self.int_of(v, l, name).map(Raw::Int),
            DeValue::String(s) => Some(Raw::Str(s.to_string())),
            _ => {
                self.wrong_type(v, l, name, want);
                None
            }
        }
    }

    /// A float, or an integer taken as one.
    fn float(&mut self, v: &Value<'_>, label: &Label, name: &str) -> Option<f64> {
        match v.get_ref() {
            DeValue::Integer(_) => Some(self.int_of(v, label, name)? as f64),
            DeValue::Float(f) => match f.as_str().parse::<f64>() {
                // As toml does: an overflow parses as infinity, a written `inf` is kept.
                Ok(x) if !x.is_infinite() || f.as_str().contains("inf") => Some(x),
                _ => {
                    self.err(
                        Some(v.span()),
                        &label.key(name),
                        format!("{f} is too large for a float"),
                    );
                    None
                }
            },
            _ => {
                self.wrong_type(v, label, name, "a number");
                None
            }
        }
    }

    /// An array of strings (an argv).
    fn strings(&mut self, v: &Value<'_>, label: &Label, name: &str) -> Option<Vec<String>> {
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(v, label, name, "an array of strings");
            return None;
        };
        let mut list = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => list.push(s.to_string()),
                _ => {
                    self.wrong_type(item, label, name, "a string");
                    ok = false;
                }
            }
        }
        ok.then_some(list)
    }

    /// An array of tables (`[[name]]`), each read as `nested` says.
    fn tables(
        &mut self,
        key: &'static Key,
        v: &Value<'_>,
        label: &Label,
        nested: &mut Nested<'_, 'v>,
    ) -> Vec<Spanned<Fields>> {
        let want = "an array of tables ([[...]])";
        let Some(items) = v.get_ref().as_array() else {
            self.wrong_type(v, label, key.name, want);
            return Vec::new();
        };
        let mut found = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::Table(t) => found.push((item.span(), t)),
                _ => self.wrong_type(item, label, key.name, want),
            }
        }
        let mut out = Vec::with_capacity(found.len());
        for (i, (span, t)) in found.into_iter().enumerate() {
            out.push(Spanned::new(span, nested(self, key, i, t)));
        }
        out
    }
}
