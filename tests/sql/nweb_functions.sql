-- nweb's pure functions: CIDs, Merkle roots and proofs, the rules' arithmetic.
SELECT nweb_cid_canonical(' bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku ') AS canonical,
       nweb_cid_canonical('not a cid') AS not_a_cid;
SELECT nweb_unixfs_file_cid('hello') AS file_cid;
SELECT nweb_merkle_root(E'{"ip":"192.0.2.1","port":22}\n{"ip":"192.0.2.1","port":443}\n') AS root;
SELECT nweb_merkle_root(E'{"ip":"192.0.2.1"}\nnot json\n');
SELECT nweb_merkle_root(ARRAY[]::bytea[]) AS empty_tree;
SELECT nweb_merkle_verify(nweb_merkle_root(E'{"a":1}\n{"b":2}\n'), '{"b": 2}',
                          nweb_merkle_proof(E'{"a":1}\n{"b":2}\n', 2)) AS verified;
SELECT nweb_merkle_proof(E'{"a":1}\n', 5);
SELECT * FROM nweb_slash_split(1000);
SELECT nweb_quota_units(10000, 0.5) AS units, nweb_submission_cost('nmap-full') AS cost,
       nweb_cost_kind('masscan') AS kind, nweb_cost_kind(NULL) AS no_kind;
SELECT nweb_submission_cost('bogus');
SELECT nweb_rep_factor(10) AS rep_factor, nweb_grace_ends_at('2026-01-01 00:00:00+00') AS grace_ends_at;
SELECT nweb_challenge_state('2026-01-04 00:00:00+00', NULL, '2026-01-02 00:00:00+00') AS in_grace,
       nweb_challenge_state('2026-01-04 00:00:00+00', NULL, '2026-01-05 00:00:00+00') AS after_grace;
