-- Reverts 0021. Database tenants are unregistered (their databases and
-- the events in them stay where they are); `migrate --down` names the
-- registrations it would drop and asks for --force first.
DELETE FROM rf_tenants WHERE mode = 'database';
ALTER TABLE rf_tenants DROP CONSTRAINT rf_tenants_url_without_password;
ALTER TABLE rf_tenants DROP CONSTRAINT rf_tenants_url_check;
ALTER TABLE rf_tenants DROP COLUMN url;
ALTER TABLE rf_tenants DROP CONSTRAINT rf_tenants_mode_check;
ALTER TABLE rf_tenants ADD CONSTRAINT rf_tenants_mode_check
    CHECK (mode IN ('conjoined', 'schema'));
