-- Runs in each tenant's schema: unqualified names resolve there.
CREATE TABLE guards (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    position text NOT NULL,
    inserted_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END
$$;

CREATE TRIGGER touch BEFORE UPDATE ON guards
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
