-- The container of the MySQL / MariaDB `#[tenancy::test(row_level)]` tests: `guards` holding the
-- rows of row-level tenants, each row's tenant in `tenant_id`.
CREATE TABLE guards (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    tenant_id VARCHAR(63) NOT NULL,
    name VARCHAR(100) NOT NULL,
    position VARCHAR(100) NOT NULL
);
