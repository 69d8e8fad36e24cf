-- Grain state for Microsoft.Orleans.Persistence.AdoNet (Orleans 10), written for Carml.Orleans.
-- The provider binds @GrainIdHash, @GrainIdN0, @GrainIdN1, @GrainTypeHash, @GrainTypeString, @GrainIdExtensionString,
-- @ServiceId, @GrainStateVersion and @PayloadBinary, reads PayloadBinary and Version, and expects writes, clears and
-- deletes to answer NewGrainStateVersion: the next version when the change applied, anything else when it did not
-- (which the provider reports as an InconsistentStateException).
CREATE TABLE IF NOT EXISTS orleansstorage
(
    grainidhash integer NOT NULL,
    grainidn0 bigint NOT NULL,
    grainidn1 bigint NOT NULL,
    graintypehash integer NOT NULL,
    graintypestring varchar(512) NOT NULL,
    grainidextensionstring varchar(512),
    serviceid varchar(150) NOT NULL,
    payloadbinary bytea,
    modifiedon timestamp without time zone NOT NULL,
    version integer
);

-- One row per grain: the unique index makes a racing first write fail instead of creating a twin.
CREATE UNIQUE INDEX IF NOT EXISTS ux_orleansstorage_grain
    ON orleansstorage (grainidhash, graintypehash, grainidn0, grainidn1, graintypestring, serviceid, coalesce(grainidextensionstring, ''));

CREATE OR REPLACE FUNCTION carml_write_grain_state(
    p_grainidhash integer, p_grainidn0 bigint, p_grainidn1 bigint, p_graintypehash integer, p_graintypestring varchar,
    p_grainidextensionstring varchar, p_serviceid varchar, p_version integer, p_payload bytea)
RETURNS TABLE (newgrainstateversion integer)
LANGUAGE plpgsql
AS $body$
DECLARE
    affected integer := 0;
BEGIN
    IF p_version IS NOT NULL THEN
        UPDATE orleansstorage
        SET payloadbinary = p_payload, modifiedon = (now() at time zone 'utc'), version = version + 1
        WHERE grainidhash = p_grainidhash AND graintypehash = p_graintypehash
          AND grainidn0 = p_grainidn0 AND grainidn1 = p_grainidn1
          AND graintypestring = p_graintypestring AND serviceid = p_serviceid
          AND coalesce(grainidextensionstring, '') = coalesce(p_grainidextensionstring, '')
          AND version = p_version;
        GET DIAGNOSTICS affected = ROW_COUNT;
        RETURN QUERY SELECT CASE WHEN affected > 0 THEN p_version + 1 ELSE p_version END;
        RETURN;
    END IF;

    INSERT INTO orleansstorage (grainidhash, grainidn0, grainidn1, graintypehash, graintypestring, grainidextensionstring,
                                serviceid, payloadbinary, modifiedon, version)
    VALUES (p_grainidhash, p_grainidn0, p_grainidn1, p_graintypehash, p_graintypestring, p_grainidextensionstring,
            p_serviceid, p_payload, (now() at time zone 'utc'), 1)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS affected = ROW_COUNT;
    RETURN QUERY SELECT CASE WHEN affected > 0 THEN 1 ELSE NULL::integer END;
END
$body$;

INSERT INTO orleansquery (querykey, querytext) VALUES
('WriteToStorageKey', 'SELECT newgrainstateversion AS NewGrainStateVersion FROM carml_write_grain_state(@GrainIdHash, @GrainIdN0, @GrainIdN1, @GrainTypeHash, @GrainTypeString, @GrainIdExtensionString, @ServiceId, @GrainStateVersion, @PayloadBinary)'),
('ReadFromStorageKey', 'SELECT payloadbinary AS PayloadBinary, version AS Version FROM orleansstorage
    WHERE grainidhash = @GrainIdHash AND graintypehash = @GrainTypeHash AND grainidn0 = @GrainIdN0 AND grainidn1 = @GrainIdN1
      AND graintypestring = @GrainTypeString AND serviceid = @ServiceId
      AND coalesce(grainidextensionstring, '''') = coalesce(@GrainIdExtensionString, '''')'),
('ClearStorageKey', 'UPDATE orleansstorage SET payloadbinary = NULL, modifiedon = (now() at time zone ''utc''), version = version + 1
    WHERE grainidhash = @GrainIdHash AND graintypehash = @GrainTypeHash AND grainidn0 = @GrainIdN0 AND grainidn1 = @GrainIdN1
      AND graintypestring = @GrainTypeString AND serviceid = @ServiceId
      AND coalesce(grainidextensionstring, '''') = coalesce(@GrainIdExtensionString, '''')
      AND version = @GrainStateVersion
    RETURNING version AS NewGrainStateVersion'),
('DeleteStorageKey', 'DELETE FROM orleansstorage
    WHERE grainidhash = @GrainIdHash AND graintypehash = @GrainTypeHash AND grainidn0 = @GrainIdN0 AND grainidn1 = @GrainIdN1
      AND graintypestring = @GrainTypeString AND serviceid = @ServiceId
      AND coalesce(grainidextensionstring, '''') = coalesce(@GrainIdExtensionString, '''')
      AND version = @GrainStateVersion
    RETURNING version + 1 AS NewGrainStateVersion')
ON CONFLICT (querykey) DO UPDATE SET querytext = EXCLUDED.querytext;
