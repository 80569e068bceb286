-- rillflow 0012: declared handlers that run as a role of their own.
--
-- By default a batch runs on the daemon's connection, so a declared
-- handler's SQL has the store owner's rights. `rillflow projections
-- handler-role create` assigns projections to a login role instead; the
-- daemon (given that role's URL) then runs those projections' batches on a
-- connection logged in as it. A batch is still one transaction (PROJ-1), so
-- the role needs the bookkeeping a batch does, and only that:
--
-- * its rows of the checkpoint, projection and dead-letter tables: the row
--   security policies below hide every other projection's rows from a role
--   listed here (roles not listed, the owner, superusers: unchanged);
-- * the fences, through the SECURITY DEFINER functions below: they take the
--   share lock on a lease row that would otherwise need UPDATE rights on the
--   lease tables. The lock is the transaction's, so it lasts until commit.
--
-- Which column a role may change, and everything else (SELECT on the log,
-- its read-model schema), is granted by the command, per role.

CREATE TABLE rf_handler_roles (
    projection  text        PRIMARY KEY,
    role_name   name        NOT NULL,
    -- The schema the role owns and keeps its read models in (first on its
    -- search_path).
    read_models name        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rf_handler_roles_role_idx ON rf_handler_roles (role_name);

-- The projections `who` runs, or NULL when `who` is no handler role.
-- SECURITY DEFINER, so roles need no rights on rf_handler_roles; the
-- policies pass current_user, which inside this function would be its
-- owner. They call it in a scalar subquery, evaluated once per statement
-- rather than per row; `x = ANY (NULL)` is NULL, which they read as "not a
-- handler role: every row". PL/pgSQL, so its plan is cached per session (a
-- SQL function here is planned at every call, and a batch calls it five
-- times).
CREATE FUNCTION rf_handled_by(p_who name) RETURNS text[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    RETURN (SELECT array_agg(projection) FROM rf_handler_roles WHERE role_name = p_who);
END
$$;

-- Whether `who` may touch `projection`: yes unless `who` is a handler role
-- that was not given it.
CREATE FUNCTION rf_handler_may(p_projection text, p_who name) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT coalesce(p_projection = ANY (rf_handled_by(p_who)), rf_handled_by(p_who) IS NULL)
$$;

ALTER TABLE rf_checkpoints ENABLE ROW LEVEL SECURITY;
CREATE POLICY rf_handler_rows ON rf_checkpoints
    USING (coalesce(projection = ANY ((SELECT rf_handled_by(current_user))::text[]), true));
ALTER TABLE rf_projections ENABLE ROW LEVEL SECURITY;
CREATE POLICY rf_handler_rows ON rf_projections
    USING (coalesce(name = ANY ((SELECT rf_handled_by(current_user))::text[]), true));
ALTER TABLE rf_projection_dlq ENABLE ROW LEVEL SECURITY;
CREATE POLICY rf_handler_rows ON rf_projection_dlq
    USING (coalesce(projection = ANY ((SELECT rf_handled_by(current_user))::text[]), true));

-- The fence of a hot/cold batch: true, with the cluster's lease row share
-- locked until the transaction ends, while `p_epoch` is its current,
-- unexpired lease (LEASE-1).
CREATE FUNCTION rf_fence_cluster(p_cluster text, p_epoch bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM 1 FROM rf_daemon_clusters
    WHERE cluster_name = p_cluster AND epoch = p_epoch
      AND lease_expires_at > clock_timestamp()
    FOR SHARE;
    RETURN FOUND;
END
$$;

-- The fence of an owned partition's batch (PROJ-4), likewise. A handler
-- role may fence only its own projections: a share lock it held on another
-- projection's lease would stall that projection's takeovers.
CREATE FUNCTION rf_fence_partition(p_projection text, p_partition integer, p_epoch bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF NOT rf_handler_may(p_projection, session_user) THEN
        RAISE EXCEPTION 'role % does not run projection %', session_user, p_projection
            USING ERRCODE = '42501';
    END IF;
    PERFORM 1 FROM rf_partition_leases
    WHERE projection = p_projection AND partition_key = p_partition AND epoch = p_epoch
      AND owner IS NOT NULL AND expires_at > clock_timestamp()
    FOR SHARE;
    RETURN FOUND;
END
$$;
