//! Crash and recovery tests of the filesystem spool: files are truncated,
//! corrupted and left half-written, then the spool is reopened.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::disk::{Disk, StdDisk};
use super::*;

fn opts() -> SpoolOptions {
    SpoolOptions {
        retry_initial: Duration::from_millis(20),
        retry_max: Duration::from_millis(80),
        max_age: Duration::from_secs(3600),
        ..SpoolOptions::default()
    }
}

fn sub(id: &str, rcpts: &[&str]) -> Submission {
    Submission {
        meta: MessageMeta {
            key: Key {
                token: "t".into(),
                id: id.into(),
            },
            envelope: Envelope {
                mail_from: "a@example.com".into(),
                rcpt_to: rcpts.iter().map(|r| r.to_string()).collect(),
                ..Envelope::default()
            },
            received_ms: now_ms(),
        },
        bytes: format!("Subject: {id}\r\n\r\nbody of {id}\r\n").into_bytes(),
    }
}

fn key(id: &str) -> Key {
    Key {
        token: "t".into(),
        id: id.into(),
    }
}

/// Opens the spool, waiting for a dropped predecessor's writer thread to let go of the lock.
fn open(dir: &Path, opts: SpoolOptions) -> FsSpool {
    for _ in 0..200 {
        match FsSpool::open(dir, opts.clone()) {
            Ok(s) => return s,
            Err(SpoolError::Locked(_)) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("open failed: {e}"),
        }
    }
    panic!("spool stayed locked")
}

async fn lease(spool: &FsSpool) -> Lease {
    tokio::time::timeout(Duration::from_secs(5), spool.next())
        .await
        .expect("a message was due")
        .expect("spool open")
}

async fn no_lease_within(spool: &FsSpool, ms: u64) {
    let r = tokio::time::timeout(Duration::from_millis(ms), spool.next()).await;
    assert!(
        r.is_err(),
        "nothing should be due, got {:?}",
        r.map(|l| l.map(|l| l.key))
    );
}

fn batch_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join("batches"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "batch"))
        .collect()
}

fn delivered(l: &Lease) -> Vec<(String, Outcome)> {
    l.envelope
        .rcpt_to
        .iter()
        .map(|r| (r.clone(), Outcome::Delivered("250 ok".into())))
        .collect()
}

#[tokio::test]
async fn an_accepted_message_survives_a_restart_and_is_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), opts());
    assert_eq!(
        spool.accept(sub("m1", &["b@x.org"])).await.unwrap(),
        Accepted::Stored
    );
    drop(spool);

    let spool = open(dir.path(), opts());
    let l = lease(&spool).await;
    assert_eq!(l.key, key("m1"));
    assert_eq!(l.bytes, b"Subject: m1\r\n\r\nbody of m1\r\n");
    spool.settle(l.clone(), delivered(&l)).await.unwrap();
    drop(spool);

    let spool = open(dir.path(), opts());
    no_lease_within(&spool, 100).await;
    let st = spool
        .status(&key("m1"))
        .expect("still known after delivery");
    assert!(matches!(st[0].state, RcptState::Delivered { .. }));
    assert!(
        batch_files(dir.path()).is_empty(),
        "the batch of a delivered message is deleted"
    );
}

#[tokio::test]
async fn a_resubmitted_id_is_a_duplicate_before_and_after_delivery_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), opts());
    assert_eq!(
        spool.accept(sub("m1", &["b@x.org"])).await.unwrap(),
        Accepted::Stored
    );
    assert_eq!(
        spool.accept(sub("m1", &["b@x.org"])).await.unwrap(),
        Accepted::Duplicate
    );
    let l = lease(&spool).await;
    spool.settle(l.clone(), delivered(&l)).await.unwrap();
    assert_eq!(
        spool.accept(sub("m1", &["b@x.org"])).await.unwrap(),
        Accepted::Duplicate
    );
    drop(spool);
    let spool = open(dir.path(), opts());
    assert_eq!(
        spool.accept(sub("m1", &["b@x.org"])).await.unwrap(),
        Accepted::Duplicate
    );
    no_lease_within(&spool, 100).await;
}

#[tokio::test]
async fn the_same_id_submitted_twice_at_once_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), opts());
    let (a, b) = tokio::join!(
        spool.accept(sub("m1", &["b@x.org"])),
        spool.accept(sub("m1", &["b@x.org"]))
    );
    let mut answers = [a.unwrap(), b.unwrap()];
    answers.sort_by_key(|a| *a == Accepted::Duplicate);
    assert_eq!(answers, [Accepted::Stored, Accepted::Duplicate]);
    let _ = lease(&spool).await;
    no_lease_within(&spool, 100).await;
}

#[tokio::test]
async fn many_concurrent_submissions_share_few_syncs_and_one_segment_per_writer() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(TestDisk::default());
    let spool = FsSpool::open_with_disk(dir.path(), opts(), disk.clone()).unwrap();
    let publishes_at_open = disk.publishes.load(Ordering::SeqCst);
    let futs: Vec<_> = (0..500)
        .map(|i| spool.accept(sub(&format!("m{i}"), &["b@x.org"])))
        .collect();
    for r in futures_util::future::join_all(futs).await {
        assert_eq!(r.unwrap(), Accepted::Stored);
    }
    let appends = disk.appends.load(Ordering::SeqCst);
    assert!(
        appends < 500,
        "group commit should make several messages durable with one append and sync, got {appends}"
    );
    assert_eq!(
        disk.publishes.load(Ordering::SeqCst),
        publishes_at_open,
        "accepting costs no rename and no directory sync"
    );
    let files = batch_files(dir.path()).len();
    assert!(
        (1..=2).contains(&files),
        "each writer appends to its own segment, got {files} files"
    );
    assert_eq!(spool.depth().queued, 500);
}

#[tokio::test]
async fn full_segments_are_closed_and_removed_once_their_messages_are_final() {
    let dir = tempfile::tempdir().unwrap();
    let small = SpoolOptions {
        segment_bytes: 512,
        ..opts()
    };
    let spool = open(dir.path(), small.clone());
    for i in 0..40 {
        spool
            .accept(sub(&format!("m{i}"), &["b@x.org"]))
            .await
            .unwrap();
    }
    assert!(
        batch_files(dir.path()).len() > 2,
        "small segments fill up and new ones are opened"
    );
    // Deliver all but m39; every segment without a live message goes away,
    // except the ones the writers still append to.
    let mut kept = None;
    for _ in 0..40 {
        let l = lease(&spool).await;
        if l.key == key("m39") {
            kept = Some(l);
            continue;
        }
        spool.settle(l.clone(), delivered(&l)).await.unwrap();
    }
    let kept = kept.expect("m39 was leased");
    assert!(
        batch_files(dir.path()).len() <= 3,
        "finished segments are removed: {:?}",
        batch_files(dir.path())
    );
    drop(spool);
    let spool = open(dir.path(), small.clone());
    assert_eq!(
        lease(&spool).await.key,
        kept.key,
        "only the unfinished message comes back"
    );
    no_lease_within(&spool, 100).await;
    assert_eq!(
        batch_files(dir.path()).len(),
        1,
        "only m39's segment is left"
    );
    for i in 0..39 {
        assert!(
            matches!(
                spool.status(&key(&format!("m{i}"))).unwrap()[0].state,
                RcptState::Delivered { .. }
            ),
            "m{i} is remembered as delivered"
        );
    }
}

#[tokio::test]
async fn a_drained_segment_is_given_up_at_its_writers_next_group_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let o = SpoolOptions {
        drained_segment_bytes: 1,
        ..opts()
    };
    let spool = open(dir.path(), o.clone());
    // Each message is delivered before the next is sent; the two writers
    // take groups as they come, so the first segment goes once its writer
    // takes another group.
    let mut first = None;
    let mut now = Vec::new();
    for i in 0..40 {
        spool
            .accept(sub(&format!("m{i}"), &["b@x.org"]))
            .await
            .unwrap();
        let first = first.get_or_insert_with(|| batch_files(dir.path())[0].clone());
        let l = lease(&spool).await;
        spool.settle(l.clone(), delivered(&l)).await.unwrap();
        now = batch_files(dir.path());
        assert!(now.len() <= 2, "one segment per writer at most: {now:?}");
        if !now.contains(first) {
            break;
        }
    }
    assert!(
        !now.contains(&first.unwrap()),
        "the first segment, drained, was given up and removed: {now:?}"
    );
}

fn only_segment(dir: &Path) -> PathBuf {
    let files = batch_files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    files.into_iter().next().unwrap()
}

#[tokio::test]
async fn a_torn_group_at_the_end_of_a_segment_is_cut_off_and_the_acknowledged_ones_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), opts());
    spool.accept(sub("m1", &["b@x.org"])).await.unwrap();
    spool.accept(sub("m2", &["b@x.org"])).await.unwrap();
    drop(spool);
    // The process died while appending the next group: half a record, then nothing.
    let mut segments = batch_files(dir.path());
    segments.sort();
    let before = segments.len();
    let path = segments.remove(0);
    let good_len = std::fs::metadata(&path).unwrap().len();
    let mut torn = Vec::new();
    let ghost = sub("ghost", &["b@x.org"]);
    record::encode_message(&mut torn, &ghost.meta, &ghost.bytes).unwrap();
    torn.truncate(torn.len() / 2);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, &torn).unwrap();
    drop(f);

    let spool = open(dir.path(), opts());
    let mut got = vec![lease(&spool).await.key.id, lease(&spool).await.key.id];
    got.sort();
    assert_eq!(got, ["m1", "m2"]);
    no_lease_within(&spool, 100).await;
    assert!(spool.status(&key("ghost")).is_none());
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        good_len,
        "the torn bytes were cut off"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("corrupt"))
            .unwrap()
            .count(),
        0,
        "a torn tail is not damage"
    );
    // New groups go to a new segment; the old one is not appended to.
    spool.accept(sub("m3", &["b@x.org"])).await.unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
    assert_eq!(batch_files(dir.path()).len(), before + 1);
}

#[tokio::test]
async fn a_zero_filled_tail_after_a_crash_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), opts());
    spool.accept(sub("m1", &["b@x.org"])).await.unwrap();
    drop(spool);
    // The file grew but its new blocks were never written (a crash between
    // the size update and the data reaching the disk).
    let path = only_segment(dir.path());
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len + 4096)
        .unwrap();
    let spool = open(dir.path(), opts());
    assert_eq!(lease(&spool).await.key, key("m1"));
    no_lease_within(&spool, 100).await;
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    assert_eq!(
        std::fs::read_dir(dir.path().join("corrupt"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn the_journal_is_compacted_while_running_and_expired_keys_are_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let small = SpoolOptions {
        journal_compact_bytes: 4096,
        retain: Duration::from_millis(50),
        ..opts()
    };
    let spool = open(dir.path(), small.clone());
    let journal = dir.path().join("journal.log");
    let mut last = 0;
    let mut shrank = 0;
    for i in 0..200 {
        spool
            .accept(sub(&format!("m{i}"), &["b@x.org"]))
            .await
            .unwrap();
        let l = lease(&spool).await;
        spool.settle(l.clone(), delivered(&l)).await.unwrap();
        let len = std::fs::metadata(&journal).unwrap().len();
        if len < last {
            shrank += 1;
        }
        last = len;
        // Let the keys so far pass their retention now and then, so that a
        // compaction has keys to forget however fast the disk is (a fast
        // one settles all 200 within the retention, and a compacted record
        // carrying a key's history is no smaller than its records).
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
    }
    assert!(
        shrank > 0,
        "the journal was rewritten smaller while running (now {last} bytes)"
    );
    // Keys past their retention are free again; recent ones are still known.
    tokio::time::sleep(Duration::from_millis(80)).await;
    spool.accept(sub("late", &["b@x.org"])).await.unwrap();
    let l = lease(&spool).await;
    spool.settle(l.clone(), delivered(&l)).await.unwrap();
    let mut forgotten = false;
    for i in 200..400 {
        spool
            .accept(sub(&format!("m{i}"), &["b@x.org"]))
            .await
            .unwrap();
        let l = lease(&spool).await;
        spool.settle(l.clone(), delivered(&l)).await.unwrap();
        if spool.status(&key("m0")).is_none() {
            forgotten = true;
            break;
        }
    }
    assert!(
        forgotten,
        "m0 left the index at a compaction after its retention"
    );
    // Every record of the compacted journal is valid, and a restart reads it.
    let bytes = std::fs::read(&journal).unwrap();
    let mut pos = 0;
    while pos < bytes.len() {
        pos += record::decode(&bytes[pos..]).unwrap().1;
    }
    drop(spool);
    let spool = open(dir.path(), small);
    no_lease_within(&spool, 100).await;
}

#[tokio::test]
async fn a_torn_journal_tail_is_cut_off_and_the_message_on_the_wire_is_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), opts());
    spool.accept(sub("m1", &["b@x.org"])).await.unwrap();
    spool.accept(sub("m2", &["b@x.org"])).await.unwrap();
    let l1 = lease(&spool).await;
    spool.settle(l1.clone(), delivered(&l1)).await.unwrap();
    // m2 is on the wire when the process dies, in the middle of appending its outcome.
    let l2 = lease(&spool).await;
    assert_eq!(l2.key, key("m2"));
    drop(spool);
    let mut torn = Vec::new();
    record::encode_settle(
        &mut torn,
        &record::Settle {
            key: key("m2"),
            rcpts: vec![RcptStatus {
                rcpt: "b@x.org".into(),
                state: RcptState::Delivered {
                    response: "250".into(),
                },
            }],
            at_ms: now_ms(),
            done: true,
            held: None,
            deleted: false,
            control: false,
            history: Vec::new(),
        },
    )
    .unwrap();
    torn.truncate(torn.len() / 2);
    let journal = dir.path().join("journal.log");
    let mut bytes = std::fs::read(&journal).unwrap();
    let good_len = bytes.len();
    bytes.extend_from_slice(&torn);
    std::fs::write(&journal, &bytes).unwrap();

    let spool = open(dir.path(), opts());
    assert!(matches!(
        spool.status(&key("m1")).unwrap()[0].state,
        RcptState::Delivered { .. }
    ));
    let again = lease(&spool).await;
    assert_eq!(
        again.key,
        key("m2"),
        "the message whose outcome was torn is sent again, never lost"
    );
    no_lease_within(&spool, 100).await;
    // The journal was rewritten without the torn bytes.
    // (Every record reads; none settles m2: the torn one is gone. The
    // compacted record of m1 carries its history, so the file is not
    // necessarily shorter than before.)
    let rewritten = std::fs::read(&journal).unwrap();
    let mut pos = 0;
    while pos < rewritten.len() {
        let (rec, used) = record::decode(&rewritten[pos..]).unwrap();
        let settle = record::decode_settle(rec.payload).unwrap();
        assert_ne!(settle.key, key("m2"), "the torn outcome must be gone");
        pos += used;
    }
    assert!(good_len > 0);
}

/// Writes a batch file by hand, as a group commit of `subs` would.
fn write_batch(dir: &Path, n: u64, subs: &[Submission]) -> PathBuf {
    let mut buf = Vec::new();
    for s in subs {
        record::encode_message(&mut buf, &s.meta, &s.bytes).unwrap();
    }
    let path = dir.join("batches").join(format!("{n:020}.batch"));
    std::fs::write(&path, buf).unwrap();
    path
}

#[tokio::test]
async fn a_corrupted_batch_record_is_quarantined_and_the_good_records_are_delivered() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), opts()));
    let path = write_batch(
        dir.path(),
        1,
        &[
            sub("m1", &["b@x.org"]),
            sub("m2", &["b@x.org"]),
            sub("m3", &["b@x.org"]),
        ],
    );
    // Flip one byte in the body of the last record.
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();

    let spool = open(dir.path(), opts());
    let quarantined: Vec<_> = std::fs::read_dir(dir.path().join("corrupt"))
        .unwrap()
        .collect();
    assert_eq!(
        quarantined.len(),
        1,
        "the damaged file is kept for the operator"
    );
    let mut got = Vec::new();
    for _ in 0..2 {
        let l = lease(&spool).await;
        assert_eq!(
            l.bytes,
            format!("Subject: {}\r\n\r\nbody of {}\r\n", l.key.id, l.key.id).into_bytes()
        );
        got.push(l.key.id.clone());
        spool.settle(l.clone(), delivered(&l)).await.unwrap();
    }
    no_lease_within(&spool, 100).await;
    got.sort();
    assert_eq!(
        got,
        ["m1", "m2"],
        "the intact records are delivered, the damaged one is not"
    );
    drop(spool);
    // The salvaged copies survive another restart, and are not delivered again.
    let spool = open(dir.path(), opts());
    no_lease_within(&spool, 100).await;
}

/// Damages the record of message `id` in `path`: `at` bytes from its start.
fn damage(path: &Path, id: &str, at: isize) {
    let mut bytes = std::fs::read(path).unwrap();
    let body = format!("body of {id}");
    let found = bytes
        .windows(body.len())
        .position(|w| w == body.as_bytes())
        .unwrap();
    let i = if at < 0 {
        found - at.unsigned_abs()
    } else {
        found + at as usize
    };
    bytes[i] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn a_damaged_record_in_the_middle_costs_only_that_message() {
    for (case, at) in [("body", 2isize), ("meta", -40)] {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path(), opts()));
        let path = write_batch(
            dir.path(),
            1,
            &[
                sub("m1", &["b@x.org"]),
                sub("m2", &["b@x.org"]),
                sub("m3", &["b@x.org"]),
            ],
        );
        damage(&path, "m2", at);
        let spool = open(dir.path(), opts());
        assert_eq!(spool.depth().damaged, 1, "{case}");
        assert_eq!(
            std::fs::read_dir(dir.path().join("corrupt"))
                .unwrap()
                .count(),
            1,
            "{case}"
        );
        let mut got = Vec::new();
        for _ in 0..2 {
            let l = lease(&spool).await;
            got.push(l.key.id.clone());
            spool.settle(l.clone(), delivered(&l)).await.unwrap();
        }
        no_lease_within(&spool, 100).await;
        got.sort();
        assert_eq!(
            got,
            ["m1", "m3"],
            "{case}: the records after the damage are read"
        );
        if case == "body" {
            // Its meta still reads: a client asking learns it failed.
            let st = spool.status(&key("m2")).expect("m2 known");
            assert!(
                matches!(&st[0].state, RcptState::Failed { reason } if reason.contains("damaged")),
                "{st:?}"
            );
        }
        drop(spool);
        let spool = open(dir.path(), opts());
        no_lease_within(&spool, 100).await;
    }
}

#[tokio::test]
async fn a_record_inside_a_damaged_message_is_never_taken_for_a_message() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), opts()));
    // m2's bytes hold a whole, valid record of another message.
    let mut m2 = sub("m2", &["b@x.org"]);
    let mut inner = Vec::new();
    record::encode_message(&mut inner, &sub("evil", &["c@x.org"]).meta, b"x").unwrap();
    m2.bytes.extend_from_slice(&inner);
    let path = write_batch(
        dir.path(),
        1,
        &[sub("m1", &["b@x.org"]), m2, sub("m3", &["b@x.org"])],
    );
    damage(&path, "m2", 2);
    let spool = open(dir.path(), opts());
    let mut got = Vec::new();
    for _ in 0..2 {
        let l = lease(&spool).await;
        got.push(l.key.id.clone());
        spool.settle(l.clone(), delivered(&l)).await.unwrap();
    }
    no_lease_within(&spool, 100).await;
    got.sort();
    assert_eq!(got, ["m1", "m3"]);
    assert!(spool.status(&key("evil")).is_none());
}

#[tokio::test]
async fn a_truncated_batch_file_keeps_its_complete_records() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), opts()));
    let path = write_batch(
        dir.path(),
        1,
        &[sub("m1", &["b@x.org"]), sub("m2", &["b@x.org"])],
    );
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let spool = open(dir.path(), opts());
    let first = lease(&spool).await;
    assert_eq!(first.key, key("m1"));
    assert_eq!(first.bytes, b"Subject: m1\r\n\r\nbody of m1\r\n");
    // The cut record is never delivered with missing bytes.
    no_lease_within(&spool, 100).await;
}

#[tokio::test]
async fn a_temp_file_left_by_a_crash_is_removed_and_never_delivered() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), opts()));
    let mut rec = Vec::new();
    let s = sub("ghost", &["b@x.org"]);
    record::encode_message(&mut rec, &s.meta, &s.bytes).unwrap();
    let tmp = dir
        .path()
        .join("batches")
        .join("00000000000000000099.batch.tmp");
    std::fs::write(&tmp, rec).unwrap();
    let spool = open(dir.path(), opts());
    assert!(!tmp.exists());
    no_lease_within(&spool, 100).await;
    assert!(spool.status(&key("ghost")).is_none());
}

#[tokio::test]
async fn transient_failures_are_retried_until_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), opts());
    let mut events = spool.subscribe();
    spool.accept(sub("m1", &["b@x.org"])).await.unwrap();
    for attempt in 1..=2u32 {
        let l = lease(&spool).await;
        assert_eq!(l.attempts, attempt - 1);
        spool
            .settle(
                l,
                vec![("b@x.org".into(), Outcome::Transient("451 try later".into()))],
            )
            .await
            .unwrap();
        let ev = events.recv().await.unwrap();
        assert!(
            matches!(ev.kind, EventKind::Deferred { attempts, .. } if attempts == attempt),
            "{ev:?}"
        );
        assert!(!ev.last, "a deferred message has more events to come");
    }
    let l = lease(&spool).await;
    spool.settle(l.clone(), delivered(&l)).await.unwrap();
    let ev = events.recv().await.unwrap();
    assert!(matches!(ev.kind, EventKind::Delivered { .. }));
    assert!(
        ev.last,
        "the delivery that makes the message final is its last event"
    );
}

#[tokio::test]
async fn a_deferred_message_past_its_maximum_age_fails_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(
        dir.path(),
        SpoolOptions {
            max_age: Duration::ZERO,
            ..opts()
        },
    );
    spool.accept(sub("m1", &["b@x.org"])).await.unwrap();
    let l = lease(&spool).await;
    spool
        .settle(
            l,
            vec![("b@x.org".into(), Outcome::Transient("421 busy".into()))],
        )
        .await
        .unwrap();
    let st = spool.status(&key("m1")).unwrap();
    assert!(
        matches!(&st[0].state, RcptState::Failed { reason } if reason.contains("421 busy")),
        "{st:?}"
    );
    no_lease_within(&spool, 150).await;
}

#[tokio::test]
async fn a_permanent_failure_is_final_and_only_deferred_recipients_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), opts());
    spool
        .accept(sub("m1", &["ok@x.org", "bad@x.org", "later@x.org"]))
        .await
        .unwrap();
    let l = lease(&spool).await;
    spool
        .settle(
            l,
            vec![
                ("ok@x.org".into(), Outcome::Delivered("250 ok".into())),
                (
                    "bad@x.org".into(),
                    Outcome::Permanent("550 no such user".into()),
                ),
                (
                    "later@x.org".into(),
                    Outcome::Transient("450 mailbox busy".into()),
                ),
            ],
        )
        .await
        .unwrap();
    drop(spool);
    let spool = open(dir.path(), opts());
    let l = lease(&spool).await;
    assert_eq!(
        l.envelope.rcpt_to,
        ["later@x.org"],
        "only the deferred recipient is tried again"
    );
    spool.settle(l.clone(), delivered(&l)).await.unwrap();
    let st = spool.status(&key("m1")).unwrap();
    assert!(st.iter().all(|r| r.state.is_final()));
    assert!(batch_files(dir.path()).is_empty());
}

#[tokio::test]
async fn a_recipient_the_upstream_did_not_report_is_deferred_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), opts());
    spool
        .accept(sub("m1", &["b@x.org", "c@x.org"]))
        .await
        .unwrap();
    let l = lease(&spool).await;
    spool
        .settle(
            l,
            vec![("b@x.org".into(), Outcome::Delivered("250".into()))],
        )
        .await
        .unwrap();
    let l = lease(&spool).await;
    assert_eq!(l.envelope.rcpt_to, ["c@x.org"]);
}

/// The real disk, counting durable appends and publishes; while `broken` is
/// set its syncs fail, and an append is torn (half its bytes reach the file).
#[derive(Default)]
struct TestDisk {
    real: StdDisk,
    broken: AtomicBool,
    appends: std::sync::atomic::AtomicUsize,
    publishes: std::sync::atomic::AtomicUsize,
}

impl Disk for TestDisk {
    fn publish(&self, dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.publishes.fetch_add(1, Ordering::SeqCst);
        if self.broken.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("injected fsync failure"));
        }
        self.real.publish(dir, name, bytes)
    }
    fn append_sync(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        if self.broken.load(Ordering::SeqCst) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            std::io::Write::write_all(&mut f, &bytes[..bytes.len() / 2])?;
            return Err(std::io::Error::other("injected fsync failure"));
        }
        self.real.append_sync(path, bytes)
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.real.read(path)
    }
    fn read_at(&self, path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        self.real.read_at(path, offset, len)
    }
    fn truncate(&self, path: &Path, len: u64) -> std::io::Result<()> {
        self.real.truncate(path, len)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.real.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.real.rename(from, to)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        self.real.list(dir)
    }
    fn close(&self, path: &Path) {
        self.real.close(path)
    }
}

#[tokio::test]
async fn a_disk_that_cannot_sync_never_acknowledges_and_loses_no_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(TestDisk::default());
    let spool = FsSpool::open_with_disk(dir.path(), opts(), disk.clone()).unwrap();
    disk.broken.store(true, Ordering::SeqCst);
    assert!(
        spool.accept(sub("m1", &["b@x.org"])).await.is_err(),
        "no ack without fsync"
    );
    assert!(spool.status(&key("m1")).is_none());
    disk.broken.store(false, Ordering::SeqCst);
    spool.accept(sub("m2", &["b@x.org"])).await.unwrap();
    let l = lease(&spool).await;
    disk.broken.store(true, Ordering::SeqCst);
    assert!(spool.settle(l.clone(), delivered(&l)).await.is_err());
    disk.broken.store(false, Ordering::SeqCst);
    // The outcome was not recorded, so the message comes back rather than vanishing.
    let again = lease(&spool).await;
    assert_eq!(again.key, key("m2"));
    // Recorded this time, after the torn bytes: the journal was rewritten
    // first, so recovery reads past them and the message is not sent again.
    spool
        .settle(again.clone(), delivered(&again))
        .await
        .unwrap();
    spool.accept(sub("m3", &["b@x.org"])).await.unwrap();
    drop(spool);
    let spool = open(dir.path(), opts());
    assert!(matches!(
        spool.status(&key("m2")).unwrap()[0].state,
        RcptState::Delivered { .. }
    ));
    assert_eq!(
        lease(&spool).await.key,
        key("m3"),
        "m3 is intact after the torn group"
    );
    no_lease_within(&spool, 100).await;
}

#[tokio::test]
async fn a_second_process_cannot_open_a_spool_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path(), opts());
    assert!(matches!(
        FsSpool::open(dir.path(), opts()),
        Err(SpoolError::Locked(_))
    ));
}

#[tokio::test]
async fn closing_the_spool_ends_waiting_workers_and_keeps_messages() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), opts());
    let waiter = {
        let s = spool.clone();
        tokio::spawn(async move { s.next().await.map(|l| l.key) })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    spool.close();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap(),
        None
    );
    spool.accept(sub("m1", &["b@x.org"])).await.unwrap();
    drop(spool);
    let spool = open(dir.path(), opts());
    assert_eq!(lease(&spool).await.key, key("m1"));
}

#[tokio::test]
async fn only_the_last_event_of_the_attempt_that_finishes_a_message_is_marked_last() {
    let dir = tempfile::tempdir().unwrap();
    let spool = open(dir.path(), opts());
    let mut events = spool.subscribe();
    spool
        .accept(sub("m1", &["a@x.org", "b@x.org"]))
        .await
        .unwrap();
    let l = lease(&spool).await;
    spool.settle(l.clone(), delivered(&l)).await.unwrap();
    let first = events.recv().await.unwrap();
    let second = events.recv().await.unwrap();
    assert_eq!((first.rcpt.as_str(), first.last), ("a@x.org", false));
    assert_eq!((second.rcpt.as_str(), second.last), ("b@x.org", true));
}

#[tokio::test]
async fn a_segment_cut_in_a_header_in_a_payload_or_at_a_boundary_recovers_its_complete_records() {
    let subs: Vec<Submission> = (0..3)
        .map(|i| sub(&format!("m{i}"), &["b@x.org"]))
        .collect();
    let mut full = Vec::new();
    let mut ends = Vec::new();
    for s in &subs {
        record::encode_message(&mut full, &s.meta, &s.bytes).unwrap();
        ends.push(full.len());
    }
    // (Every byte offset is covered by the unit test of read_segment in fs.rs.)
    for cut in [
        0,
        5,
        ends[0],
        ends[0] + 9,
        ends[1] + 40,
        full.len() - 1,
        full.len(),
    ] {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path(), opts()));
        let path = dir.path().join("batches").join(format!("{:020}.batch", 7));
        std::fs::write(&path, &full[..cut]).unwrap();
        let spool = open(dir.path(), opts());
        let complete = ends.iter().filter(|&&e| e <= cut).count();
        for (i, s) in subs.iter().enumerate() {
            assert_eq!(
                spool.status(&s.meta.key).is_some(),
                i < complete,
                "cut at {cut}: m{i} known iff its record is complete"
            );
        }
        if complete > 0 {
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                ends[complete - 1] as u64,
                "cut at {cut}: the torn bytes are cut off"
            );
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("corrupt"))
                .unwrap()
                .count(),
            0,
            "cut at {cut}: a torn tail is not damage"
        );
    }
}

/// A disk of `quota` bytes: a write that would go past it fails with ENOSPC
/// and writes nothing; removing a file gives its bytes back.
struct FullDisk {
    real: StdDisk,
    quota: u64,
    used: std::sync::Mutex<std::collections::HashMap<PathBuf, u64>>,
}

impl FullDisk {
    fn new(quota: u64) -> Self {
        FullDisk {
            real: StdDisk::default(),
            quota,
            used: Default::default(),
        }
    }
    fn total(&self) -> u64 {
        self.used.lock().unwrap().values().sum()
    }
    /// Reserves `add` bytes for `path` (replacing `replace` bytes), or ENOSPC.
    fn grow(&self, path: &Path, add: u64, replace: bool) -> std::io::Result<()> {
        let mut used = self.used.lock().unwrap();
        let old = used.get(path).copied().unwrap_or(0);
        let total: u64 = used.values().sum();
        let after = if replace {
            total - old + add
        } else {
            total + add
        };
        if after > self.quota {
            return Err(std::io::Error::from_raw_os_error(28));
        }
        used.insert(path.to_path_buf(), if replace { add } else { old + add });
        Ok(())
    }
}

impl Disk for FullDisk {
    fn publish(&self, dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        // As on a real disk, the new copy is written beside the old one,
        // then renamed over it.
        let tmp = dir.join(format!("{name}.tmp"));
        self.grow(&tmp, bytes.len() as u64, true)?;
        let mut used = self.used.lock().unwrap();
        used.remove(&tmp);
        used.insert(dir.join(name), bytes.len() as u64);
        drop(used);
        self.real.publish(dir, name, bytes)
    }
    fn append_sync(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        if let Err(e) = self.grow(path, bytes.len() as u64, false) {
            // As a real disk does, what fits is written before ENOSPC.
            let room = self.quota.saturating_sub(self.total()) as usize;
            if room > 0 {
                self.grow(path, room as u64, false)?;
                self.real
                    .append_sync(path, &bytes[..room.min(bytes.len())])?;
            }
            return Err(e);
        }
        self.real.append_sync(path, bytes)
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.real.read(path)
    }
    fn read_at(&self, path: &Path, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        self.real.read_at(path, offset, len)
    }
    fn truncate(&self, path: &Path, len: u64) -> std::io::Result<()> {
        self.used.lock().unwrap().insert(path.to_path_buf(), len);
        self.real.truncate(path, len)
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.used.lock().unwrap().remove(path);
        self.real.remove(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        let mut used = self.used.lock().unwrap();
        let n = used.remove(from).unwrap_or(0);
        used.insert(to.to_path_buf(), n);
        drop(used);
        self.real.rename(from, to)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        self.real.list(dir)
    }
    fn close(&self, path: &Path) {
        self.real.close(path)
    }
}

fn sized(id: &str, size: usize) -> Submission {
    let mut s = sub(id, &["b@x.org"]);
    s.bytes.resize(size, b'x');
    s
}

#[tokio::test]
async fn a_full_disk_refuses_clearly_then_frees_space_as_messages_finish_and_accepts_again() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FullDisk::new(200 << 10));
    let o = SpoolOptions {
        segment_bytes: 40 << 10,
        reserve_bytes: 16 << 10,
        ..opts()
    };
    let spool = FsSpool::open_with_disk(dir.path(), o, disk.clone()).unwrap();
    // Fill the disk: 10 KB messages, one at a time, until one is refused.
    let mut stored = Vec::new();
    let refusal = loop {
        let id = format!("m{}", stored.len());
        match spool.accept(sized(&id, 10 << 10)).await {
            Ok(a) => {
                assert_eq!(a, Accepted::Stored);
                stored.push(id);
            }
            Err(e) => break e,
        }
        assert!(stored.len() < 100, "the quota never filled");
    };
    assert!(stored.len() >= 10, "only {} stored", stored.len());
    // A clear, retryable refusal that says why; never "cannot encode".
    assert!(matches!(refusal, SpoolError::NotStored(_)), "{refusal:?}");
    assert!(refusal.to_string().contains("No space left"), "{refusal}");
    // Deliver everything that was accepted: every outcome is recorded, even on
    // the full disk (the reserve makes room for the journal).
    for _ in 0..stored.len() {
        let l = lease(&spool).await;
        spool.settle(l.clone(), delivered(&l)).await.unwrap();
    }
    for id in &stored {
        assert!(matches!(
            spool.status(&key(id)).unwrap()[0].state,
            RcptState::Delivered { .. }
        ));
    }
    // The finished segments are gone and the space is back (the journal and
    // the reserve, taken again, remain).
    assert!(
        batch_files(dir.path()).len() <= 2,
        "finished segments left: {:?}",
        batch_files(dir.path())
    );
    assert!(
        dir.path().join("reserve").exists(),
        "the reserve is taken again"
    );
    assert!(
        disk.total() < 120 << 10,
        "{} bytes still used",
        disk.total()
    );
    // Acceptance resumes by itself.
    for i in 0..5 {
        assert_eq!(
            spool
                .accept(sized(&format!("again{i}"), 10 << 10))
                .await
                .unwrap(),
            Accepted::Stored
        );
    }
}

#[tokio::test]
async fn a_spool_reopened_on_a_full_disk_recovers_with_its_reserve() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FullDisk::new(200 << 10));
    let o = SpoolOptions {
        segment_bytes: 40 << 10,
        reserve_bytes: 16 << 10,
        ..opts()
    };
    let spool = FsSpool::open_with_disk(dir.path(), o.clone(), disk.clone()).unwrap();
    // Deferred messages: the journal has something to rewrite at start.
    let mut stored = Vec::new();
    for i in 0..20 {
        let id = format!("d{i}");
        spool.accept(sized(&id, 1000)).await.unwrap();
        let l = lease(&spool).await;
        let later = vec![(
            "b@x.org".to_string(),
            Outcome::Transient("451 later".into()),
        )];
        spool.settle(l, later).await.unwrap();
        stored.push(id);
    }
    // Then fill the disk to the last kilobyte.
    for size in [10 << 10, 1 << 10, 200] {
        loop {
            let id = format!("m{}", stored.len());
            if spool.accept(sized(&id, size)).await.is_err() {
                break;
            }
            stored.push(id);
            assert!(stored.len() < 400, "the quota never filled");
        }
    }
    drop(spool);
    // Recovery rewrites the journal: on the full disk, in the reserve's space.
    let spool = loop {
        match FsSpool::open_with_disk(dir.path(), o.clone(), disk.clone()) {
            Ok(s) => break s,
            Err(SpoolError::Locked(_)) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("cannot reopen on a full disk: {e}"),
        }
    };
    let mut got = Vec::new();
    for _ in 0..stored.len() {
        let l = lease(&spool).await;
        got.push(l.key.id.clone());
        spool.settle(l.clone(), delivered(&l)).await.unwrap();
    }
    got.sort();
    stored.sort();
    assert_eq!(got, stored);
}

#[tokio::test]
async fn a_group_refused_on_a_full_disk_leaves_nothing_a_restart_would_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Arc::new(FullDisk::new(100 << 10));
    let o = SpoolOptions {
        reserve_bytes: 0,
        ..opts()
    };
    let spool = FsSpool::open_with_disk(dir.path(), o.clone(), disk.clone()).unwrap();
    // Groups of several messages at once: the disk fills in the middle of
    // one, whose first records reach the file and the others do not.
    let mut stored = Vec::new();
    let mut refused = Vec::new();
    let mut n = 0;
    while refused.is_empty() {
        let ids: Vec<String> = (n..n + 32).map(|i| format!("m{i}")).collect();
        n += 32;
        let results =
            futures_util::future::join_all(ids.iter().map(|id| spool.accept(sized(id, 300)))).await;
        for (id, r) in ids.into_iter().zip(results) {
            match r {
                Ok(_) => stored.push(id),
                Err(_) => refused.push(id),
            }
        }
        assert!(n < 4000, "the quota never filled");
    }
    drop(spool);
    let spool = loop {
        match FsSpool::open_with_disk(dir.path(), o.clone(), disk.clone()) {
            Ok(s) => break s,
            Err(SpoolError::Locked(_)) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("cannot reopen: {e}"),
        }
    };
    let mut got = Vec::new();
    for _ in 0..stored.len() {
        got.push(lease(&spool).await.key.id);
    }
    no_lease_within(&spool, 100).await;
    got.sort();
    stored.sort();
    assert_eq!(got, stored, "refused: {refused:?}");
    for id in &refused {
        assert!(spool.status(&key(id)).is_none(), "{id} was refused");
    }
}
