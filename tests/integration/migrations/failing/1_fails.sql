-- Fails on every backend, naming a table that does not exist: the error's cause (only in its
-- `source()`) names it, so a set-up panic that prints the whole chain shows the name.
SELECT * FROM no_such_table_for_the_chain;
