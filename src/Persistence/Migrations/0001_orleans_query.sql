-- The query catalogue the Orleans ADO.NET providers read their statements from.
CREATE TABLE IF NOT EXISTS orleansquery
(
    querykey varchar(64) NOT NULL PRIMARY KEY,
    querytext varchar(8000) NOT NULL
);
