-- Hand-overs signed by people: a portal user proposes or accepts a hand-over as well as an API token does. Each
-- side is a token or a user, never both; a user's name and email are kept as they were when they signed, like
-- the signers inside the custody chain.

ALTER TABLE custody_handovers
    DROP CONSTRAINT custody_handovers_check,
    ALTER COLUMN proposer_token_id DROP NOT NULL,
    ADD COLUMN proposer_user_id BIGINT REFERENCES users (id),
    ADD COLUMN proposer_name    TEXT,
    ADD COLUMN proposer_email   TEXT,
    ADD COLUMN acceptor_user_id BIGINT REFERENCES users (id),
    ADD COLUMN acceptor_name    TEXT,
    ADD COLUMN acceptor_email   TEXT,
    ADD CONSTRAINT custody_handovers_proposer CHECK (
        (proposer_token_id IS NULL) <> (proposer_user_id IS NULL)
        AND (proposer_user_id IS NULL) = (proposer_email IS NULL)
    ),
    ADD CONSTRAINT custody_handovers_acceptance CHECK (
        (accepted_at IS NULL) = (event_seq IS NULL)
        AND (accepted_at IS NULL) = (acceptor_token_id IS NULL AND acceptor_user_id IS NULL)
        AND (acceptor_token_id IS NULL OR acceptor_user_id IS NULL)
        AND (acceptor_user_id IS NULL) = (acceptor_email IS NULL)
    );
