-- Chain of custody: events hash-chained per shipment (append-only), the head of each chain, and hand-overs
-- proposed by the custodian that join the chain only once the receiving organisation accepts them.

CREATE TABLE custody_events (
    shipment_id     BIGINT NOT NULL REFERENCES shipments (id),
    seq             INTEGER NOT NULL CHECK (seq >= 1),
    kind            TEXT NOT NULL
                    CHECK (kind IN ('packed', 'picked_up', 'handed_over', 'arrived', 'delivered', 'received')),
    party_id        BIGINT REFERENCES organisations (id),
    counterparty_id BIGINT REFERENCES organisations (id),
    place_name      TEXT,
    place_lat       DOUBLE PRECISION NOT NULL,
    place_lon       DOUBLE PRECISION NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL,
    signers         TEXT NOT NULL,  -- JSON [{"by", "organisation_id", "token_id", "tracker_id"}, ...]
    note            TEXT,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    PRIMARY KEY (shipment_id, seq)
);

CREATE FUNCTION custody_events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'custody_events is append-only';
END;
$$;

CREATE TRIGGER custody_events_no_update BEFORE UPDATE OR DELETE ON custody_events
    FOR EACH ROW EXECUTE FUNCTION custody_events_are_append_only();
CREATE TRIGGER custody_events_no_truncate BEFORE TRUNCATE ON custody_events
    FOR EACH STATEMENT EXECUTE FUNCTION custody_events_are_append_only();

-- Where each chain ends, written with every append: a removed last event shows as a chain shorter than its head.
CREATE TABLE custody_heads (
    shipment_id BIGINT PRIMARY KEY REFERENCES shipments (id),
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    hash        TEXT NOT NULL
);

CREATE TABLE custody_handovers (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id       BIGINT NOT NULL REFERENCES shipments (id),
    from_id           BIGINT NOT NULL REFERENCES organisations (id),
    to_id             BIGINT NOT NULL REFERENCES organisations (id),
    place_name        TEXT,
    place_lat         DOUBLE PRECISION NOT NULL,
    place_lon         DOUBLE PRECISION NOT NULL,
    occurred_at       TIMESTAMPTZ NOT NULL,
    note              TEXT,
    proposer_token_id BIGINT NOT NULL REFERENCES api_tokens (id),
    proposed_at       TIMESTAMPTZ NOT NULL,
    acceptor_token_id BIGINT REFERENCES api_tokens (id),
    accepted_at       TIMESTAMPTZ,
    event_seq         INTEGER,
    CHECK ((accepted_at IS NULL) = (event_seq IS NULL) AND (accepted_at IS NULL) = (acceptor_token_id IS NULL))
);

CREATE INDEX custody_handovers_by_shipment ON custody_handovers (shipment_id, id);
