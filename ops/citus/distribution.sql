-- coldchain on Citus: how every table of the schema is placed when one PostgreSQL is not enough.
--
-- Run on the coordinator of a Citus cluster (Citus 11.2 or later: identity columns of distributed tables; 11.1 or
-- later for PostgreSQL 15), on a database migrated by `coldchain migrate`, before the service starts on it:
--
--     psql "$COLDCHAIN_DATABASE_URL" --single-transaction --file ops/citus/distribution.sql
--
-- This file is the plan: tests/storage/test_citus_schema.py reads it and checks the migrated schema against
-- Citus's rules (every table placed once; every primary key, unique constraint and unique index of a distributed
-- table holds its distribution column; foreign keys between distributed tables colocated and on that column; no
-- foreign key from a reference or local table to a distributed one; no triggers on distributed or reference
-- tables). A migration that adds a table must place it here.

-- Reference tables: small, shared, and joined with the distributed tables; a copy on every node. Created in the
-- order of their foreign keys.
SELECT create_reference_table('organisations');
SELECT create_reference_table('stability_profiles');
SELECT create_reference_table('products');
SELECT create_reference_table('lots');
SELECT create_reference_table('trackers');
SELECT create_reference_table('shipments');
SELECT create_reference_table('shipment_legs');
SELECT create_reference_table('tracker_assignments');

-- Colocation group "trackers", distributed by tracker_id: the readings (partitioned by month; Citus distributes
-- every partition with its parent, and partitions made later by readings_partition()), what ingest keeps beside
-- them, and the tracker's sync state. A tracker's batch touches one shard of each.
SELECT create_distributed_table('readings', 'tracker_id', colocate_with => 'none');
SELECT create_distributed_table('quarantined_readings', 'tracker_id', colocate_with => 'readings');
SELECT create_distributed_table('sync_conflicts', 'tracker_id', colocate_with => 'readings');
SELECT create_distributed_table('tracker_sync_state', 'tracker_id', colocate_with => 'readings');
SELECT create_distributed_table('tracker_silences', 'tracker_id', colocate_with => 'readings');

-- Colocation group "shipments", distributed by shipment_id: the evaluation's state (a stream's engine state is the
-- largest row of the schema), the lot budget's spending, and the arrival estimates, read per shipment (one shard).
SELECT create_distributed_table('evaluation_streams', 'shipment_id', colocate_with => 'none');
SELECT create_distributed_table('budget_spent', 'shipment_id', colocate_with => 'evaluation_streams');
SELECT create_distributed_table('shipment_etas', 'shipment_id', colocate_with => 'evaluation_streams');

-- Local tables stay on the coordinator: the hash-chained and append-only records (one chain, one order, guarded
-- by triggers), the commit-ordered notifications and their deliveries, the excursions and alarms (a few per
-- shipment, referred to by id from the audit trail and notifications), people, sessions and tokens, their email
-- preferences, escalation chains and email outbox (read per person and by the notifications they follow), and the job
-- bookkeeping. Those with a foreign key to a reference table become Citus local tables when it is created
-- (citus.enable_local_reference_table_foreign_keys, on by default), so they join with every other table.
-- local: schema_migrations
-- local: audit_log
-- local: api_tokens
-- local: users
-- local: sessions
-- local: login_failures
-- local: custody_events
-- local: custody_heads
-- local: custody_handovers
-- local: decisions
-- local: decision_signatures
-- local: excursions
-- local: alarms
-- local: notifications
-- local: webhooks
-- local: webhook_kinds
-- local: webhook_deliveries
-- local: webhook_attempts
-- local: job_runs
-- local: chain_checks
-- local: logger_files
-- local: logger_days
-- local: readings_seals
-- local: notification_preferences
-- local: notification_preference_kinds
-- local: shipment_follows
-- local: escalation_chains
-- local: escalation_steps
-- local: escalation_notices
-- local: emails
-- local: email_attempts
-- local: email_cursor
