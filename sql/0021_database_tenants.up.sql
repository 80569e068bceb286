-- rillflow 0021: tenants with a database of their own.
--
-- A database tenant's store is a whole rillflow store (every migration
-- applied) in another database, on this server or another one. The base
-- schema's registry keeps where it is: `rf_tenants.url`, set for database
-- tenants and for nobody else.
--
-- The URL never carries a password: `tenants add` refuses one, and the
-- CHECK below refuses one written by hand, in the userinfo
-- (`postgres://user:pw@host`) or the query string (`?password=`,
-- `&sslpassword=`). The password comes from the environment of whoever
-- connects (RILLFLOW_TENANT_<NAME>_PASSWORD, PGPASSWORD or a pgpass file),
-- so a registry row, a dump of it or a diagnostics bundle holds nothing
-- secret.

ALTER TABLE rf_tenants DROP CONSTRAINT rf_tenants_mode_check;
ALTER TABLE rf_tenants ADD CONSTRAINT rf_tenants_mode_check
    CHECK (mode IN ('conjoined', 'schema', 'database'));
ALTER TABLE rf_tenants ADD COLUMN url text;
ALTER TABLE rf_tenants ADD CONSTRAINT rf_tenants_url_check
    CHECK ((mode = 'database') = (url IS NOT NULL));
ALTER TABLE rf_tenants ADD CONSTRAINT rf_tenants_url_without_password
    CHECK (url !~* '://[^/?#@]*:[^/?#]*@' AND url !~* '[?&](ssl)?password=');
