-- Hand-overs signed by people: a portal user proposes or accepts a hand-over as well as an API token does. Each
-- side is a token or a user, never both; a user's name and email are kept as they were when they signed, like
-- the signers inside the custody chain.
--
-- SQLite cannot drop a NOT NULL or a CHECK in place: the table is built anew and its rows copied (nothing
-- refers to it).

CREATE TABLE custody_handovers_0015 (
    id                INTEGER PRIMARY KEY,
    shipment_id       INTEGER NOT NULL REFERENCES shipments (id),
    from_id           INTEGER NOT NULL REFERENCES organisations (id),
    to_id             INTEGER NOT NULL REFERENCES organisations (id),
    place_name        TEXT,
    place_lat         REAL NOT NULL,
    place_lon         REAL NOT NULL,
    occurred_at       TEXT NOT NULL,
    note              TEXT,
    proposer_token_id INTEGER REFERENCES api_tokens (id),
    proposer_user_id  INTEGER REFERENCES users (id),
    proposer_name     TEXT,
    proposer_email    TEXT,
    proposed_at       TEXT NOT NULL,
    acceptor_token_id INTEGER REFERENCES api_tokens (id),
    acceptor_user_id  INTEGER REFERENCES users (id),
    acceptor_name     TEXT,
    acceptor_email    TEXT,
    accepted_at       TEXT,
    event_seq         INTEGER,
    CONSTRAINT custody_handovers_proposer CHECK (
        (proposer_token_id IS NULL) <> (proposer_user_id IS NULL)
        AND (proposer_user_id IS NULL) = (proposer_email IS NULL)
    ),
    CONSTRAINT custody_handovers_acceptance CHECK (
        (accepted_at IS NULL) = (event_seq IS NULL)
        AND (accepted_at IS NULL) = (acceptor_token_id IS NULL AND acceptor_user_id IS NULL)
        AND (acceptor_token_id IS NULL OR acceptor_user_id IS NULL)
        AND (acceptor_user_id IS NULL) = (acceptor_email IS NULL)
    )
);

INSERT INTO custody_handovers_0015 (id, shipment_id, from_id, to_id, place_name, place_lat, place_lon, occurred_at,
                                    note, proposer_token_id, proposed_at, acceptor_token_id, accepted_at, event_seq)
SELECT id, shipment_id, from_id, to_id, place_name, place_lat, place_lon, occurred_at, note, proposer_token_id,
       proposed_at, acceptor_token_id, accepted_at, event_seq
FROM custody_handovers;

DROP TABLE custody_handovers;

ALTER TABLE custody_handovers_0015 RENAME TO custody_handovers;

CREATE INDEX custody_handovers_by_shipment ON custody_handovers (shipment_id, id);
