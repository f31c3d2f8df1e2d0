-- Chain of custody: events hash-chained per shipment (append-only), the head of each chain, and hand-overs
-- proposed by the custodian that join the chain only once the receiving organisation accepts them.
-- Times are TEXT in ISO 8601 UTC with microseconds.

CREATE TABLE custody_events (
    shipment_id     INTEGER NOT NULL REFERENCES shipments (id),
    seq             INTEGER NOT NULL CHECK (seq >= 1),
    kind            TEXT NOT NULL
                    CHECK (kind IN ('packed', 'picked_up', 'handed_over', 'arrived', 'delivered', 'received')),
    party_id        INTEGER REFERENCES organisations (id),
    counterparty_id INTEGER REFERENCES organisations (id),
    place_name      TEXT,
    place_lat       REAL NOT NULL,
    place_lon       REAL NOT NULL,
    occurred_at     TEXT NOT NULL,
    recorded_at     TEXT NOT NULL,
    signers         TEXT NOT NULL,  -- JSON [{"by", "organisation_id", "token_id", "tracker_id"}, ...]
    note            TEXT,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    PRIMARY KEY (shipment_id, seq)
);

CREATE TRIGGER custody_events_no_update BEFORE UPDATE ON custody_events
BEGIN
    SELECT RAISE(ABORT, 'custody_events is append-only');
END;

CREATE TRIGGER custody_events_no_delete BEFORE DELETE ON custody_events
BEGIN
    SELECT RAISE(ABORT, 'custody_events is append-only');
END;

-- Where each chain ends, written with every append: a removed last event shows as a chain shorter than its head.
CREATE TABLE custody_heads (
    shipment_id INTEGER PRIMARY KEY REFERENCES shipments (id),
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    hash        TEXT NOT NULL
);

CREATE TABLE custody_handovers (
    id                INTEGER PRIMARY KEY,
    shipment_id       INTEGER NOT NULL REFERENCES shipments (id),
    from_id           INTEGER NOT NULL REFERENCES organisations (id),
    to_id             INTEGER NOT NULL REFERENCES organisations (id),
    place_name        TEXT,
    place_lat         REAL NOT NULL,
    place_lon         REAL NOT NULL,
    occurred_at       TEXT NOT NULL,
    note              TEXT,
    proposer_token_id INTEGER NOT NULL REFERENCES api_tokens (id),
    proposed_at       TEXT NOT NULL,
    acceptor_token_id INTEGER REFERENCES api_tokens (id),
    accepted_at       TEXT,
    event_seq         INTEGER,
    CHECK ((accepted_at IS NULL) = (event_seq IS NULL) AND (accepted_at IS NULL) = (acceptor_token_id IS NULL))
);

CREATE INDEX custody_handovers_by_shipment ON custody_handovers (shipment_id, id);
