-- The audit trail as auditors read it: a bounded page by id, filtered in SQL, and the latest verification of
-- each hash chain.
-- :organisation_id scopes the page to the entries about the organisation's records (NULL: the operator, all);
-- :shipment_id keeps the entries about one shipment, its alarms and decisions included; :actor keeps the entries
-- whose actor contains the text (replace() is an exact, case-sensitive substring test on both engines).

-- name: audit_page(organisation_id, shipment_id, actor, since, until, after_id, limit)
SELECT a.id, a.at, a.actor, a.action, a.subject, a.detail, a.prev_hash, a.hash
FROM audit_log a
WHERE a.id > :after_id
  AND a.at >= :since AND a.at < :until
  AND (CAST(:actor AS TEXT) IS NULL OR replace(a.actor, :actor, '') <> a.actor)
  AND (CAST(:shipment_id AS BIGINT) IS NULL OR a.subject IN (
        SELECT 'shipment:' || CAST(:shipment_id AS BIGINT)
        UNION ALL SELECT 'alarm:' || x.id FROM alarms x WHERE x.shipment_id = :shipment_id
        UNION ALL SELECT 'shipment:' || d.shipment_id || '/decision:' || d.id
                  FROM decisions d WHERE d.shipment_id = :shipment_id))
  AND (CAST(:organisation_id AS BIGINT) IS NULL OR a.subject IN (
        WITH own AS (
            SELECT s.id FROM shipments s
            WHERE s.organisation_id = :organisation_id OR s.receiver_id = :organisation_id
               OR EXISTS (SELECT 1 FROM shipment_legs g WHERE g.shipment_id = s.id AND g.carrier_id = :organisation_id)
        )
        SELECT 'shipment:' || own.id FROM own
        UNION ALL SELECT 'alarm:' || x.id FROM alarms x JOIN own ON own.id = x.shipment_id
        UNION ALL SELECT 'shipment:' || d.shipment_id || '/decision:' || d.id FROM decisions d JOIN own ON own.id = d.shipment_id
        UNION ALL SELECT 'organisation:' || CAST(:organisation_id AS BIGINT)
        UNION ALL SELECT 'user:' || u.id FROM users u WHERE u.organisation_id = :organisation_id
        UNION ALL SELECT 'token:' || t.id FROM api_tokens t WHERE t.organisation_id = :organisation_id
        UNION ALL SELECT 'tracker:' || t.id FROM trackers t WHERE t.organisation_id = :organisation_id
        UNION ALL SELECT 'webhook:' || w.id FROM webhooks w WHERE w.organisation_id = :organisation_id
        UNION ALL SELECT 'product:' || p.id FROM products p WHERE p.organisation_id = :organisation_id
        UNION ALL SELECT 'lot:' || l.id FROM lots l JOIN products p ON p.id = l.product_id
                  WHERE p.organisation_id = :organisation_id))
ORDER BY a.id
LIMIT :limit;

-- name: chain_check(chain)^
SELECT chain, checked_at, intact, checked, broken_at, head_hash, reported_break FROM chain_checks WHERE chain = :chain;

-- name: save_chain_check(chain, checked_at, intact, checked, broken_at, head_hash, reported_break)!
INSERT INTO chain_checks (chain, checked_at, intact, checked, broken_at, head_hash, reported_break)
VALUES (:chain, :checked_at, :intact, :checked, :broken_at, :head_hash, :reported_break)
ON CONFLICT (chain) DO UPDATE SET checked_at = excluded.checked_at, intact = excluded.intact,
    checked = excluded.checked, broken_at = excluded.broken_at, head_hash = excluded.head_hash,
    reported_break = excluded.reported_break;
