-- Stability profiles, versioned: a changed profile is stored as the next version of its id, and every version
-- stays readable as it was (a shipment judged against version 1 can be re-judged against exactly that).
-- The document is the profile as canonical JSON (msgspec), without its version: the key says the version.

CREATE TABLE stability_profiles (
    profile_id  TEXT NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    name        TEXT NOT NULL,
    document    TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (profile_id, version)
);

-- A product names its profile by id; the version is pinned where a shipment is judged, not here.
ALTER TABLE products ADD COLUMN profile_id TEXT;
