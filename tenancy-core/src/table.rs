//! A model's table as the derive describes it: [`TableDef`] and its [`ColumnDef`]s.

/// One column of a model's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnDef {
    /// The column's name in the database.
    pub name: &'static str,
    /// Whether this is the primary key (exactly one column of a table is).
    pub primary_key: bool,
    /// Whether the database fills it (serial/identity, a `DEFAULT`): never written by insert or
    /// update, always read back with the stored row.
    pub generated: bool,
}

impl ColumnDef {
    /// A plain column, written on insert and update.
    pub const fn new(name: &'static str) -> Self {
        ColumnDef {
            name,
            primary_key: false,
            generated: false,
        }
    }

    /// Marks the column as the primary key.
    pub const fn primary_key(mut self) -> Self {
        self.primary_key = true;
        self
    }

    /// Marks the column as filled by the database.
    pub const fn generated(mut self) -> Self {
        self.generated = true;
        self
    }

    /// Whether insert writes this column.
    pub const fn is_insertable(&self) -> bool {
        !self.generated
    }

    /// Whether update writes this column.
    pub const fn is_updatable(&self) -> bool {
        !self.generated && !self.primary_key
    }
}

/// A model's table: its name (unqualified; the tenant supplies the container) and its columns
/// in field order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDef {
    /// The table's name, the same in every tenant.
    pub name: &'static str,
    /// The columns, in the order of the struct's fields (skipped fields have none).
    pub columns: &'static [ColumnDef],
    /// For a [`SharedModel`](crate::SharedModel): the one schema (MySQL: database) the table
    /// lives in for every tenant, which every statement names instead of a tenant's. `None` for
    /// a tenant table.
    pub schema: Option<&'static str>,
    /// The column that holds each row's tenant (`#[tenancy(tenant_column = "tenant_id")]`):
    /// every statement on the table filters by it and every insert sets it, so the table can
    /// hold the rows of several tenants ([`Tenant::rows_in`](crate::Tenant::rows_in)). Not a
    /// field of the model. `None`: the table holds one tenant's rows.
    pub tenant_column: Option<&'static str>,
}

impl TableDef {
    /// The primary key column.
    ///
    /// # Panics
    /// If no column is marked primary key; the derive guarantees exactly one.
    pub fn primary_key(&self) -> &ColumnDef {
        &self.columns[self.primary_key_index()]
    }

    /// The index of the primary key column.
    ///
    /// # Panics
    /// If no column is marked primary key; the derive guarantees exactly one.
    pub fn primary_key_index(&self) -> usize {
        self.columns
            .iter()
            .position(|c| c.primary_key)
            .unwrap_or_else(|| panic!("table {:?} has no primary key column", self.name))
    }

    /// Columns written by insert, in order.
    pub fn insertable(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns.iter().filter(|c| c.is_insertable())
    }

    /// Indexes of the columns written by insert, in order.
    pub fn insertable_indexes(&self) -> impl Iterator<Item = usize> + '_ {
        self.indexes_where(ColumnDef::is_insertable)
    }

    /// Indexes of the columns written by a full update, in order.
    pub fn updatable_indexes(&self) -> impl Iterator<Item = usize> + '_ {
        self.indexes_where(ColumnDef::is_updatable)
    }

    /// Indexes of the columns for which `keep` holds, in order.
    fn indexes_where(&self, keep: fn(&ColumnDef) -> bool) -> impl Iterator<Item = usize> + '_ {
        self.columns
            .iter()
            .enumerate()
            .filter(move |(_, c)| keep(c))
            .map(|(i, _)| i)
    }
}
