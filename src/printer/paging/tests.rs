use super::*;
use crate::printer::jobs::COMPLETED;
use std::sync::Mutex;

/// How a simulated printer sends one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Good,
    /// A value the `ipp` crate refuses (read job by job: unreadable).
    BadValue,
    /// Its record alone is over the response cap, unless only its
    /// identity is asked for.
    TooLarge,
    /// Its bytes stop making sense, unless only its identity is asked for.
    Breaks,
    /// Unreadable, without an id or uuid.
    Nameless,
    /// Over the response cap even when only its identity is asked for.
    Hopeless,
}

/// A printer's job list as pages come out of it.
struct Fake {
    jobs: Mutex<Vec<(Job, Kind)>>,
    ignores_first_index: bool,
    /// Cuts every page at this many jobs, and says so (as CUPS does).
    cut: Option<u32>,
    /// Fails every request with this (a printer over the cap, say).
    every: Option<fn() -> IppError>,
    asked: Mutex<Vec<(u32, u32, Attrs)>>,
}

fn job(id: i32) -> Job {
    Job {
        id,
        uuid: Some(format!("urn:uuid:{id}")),
        state: COMPLETED,
        user: Some("alice".into()),
        impressions_completed: Some(1),
        ..Job::default()
    }
}

impl Fake {
    fn new(n: i32) -> Fake {
        Fake {
            jobs: Mutex::new((1..=n).map(|id| (job(id), Kind::Good)).collect()),
            ignores_first_index: false,
            cut: None,
            every: None,
            asked: Mutex::new(Vec::new()),
        }
    }

    fn with(self, index: usize, kind: Kind) -> Fake {
        self.jobs.lock().expect("jobs")[index].1 = kind;
        self
    }

    fn requests(&self) -> Vec<(u32, u32, Attrs)> {
        self.asked.lock().expect("asked").clone()
    }

    fn answer(&self, first: u32, limit: u32, attrs: Attrs) -> Result<Listing, IppError> {
        self.asked
            .lock()
            .expect("asked")
            .push((first, limit, attrs));
        if let Some(fail) = self.every {
            return Err(fail());
        }
        let jobs = self.jobs.lock().expect("jobs");
        let start = if self.ignores_first_index {
            0
        } else {
            first as usize - 1
        };
        let limit = self.cut.map_or(limit, |c| c.min(limit));
        let mut listing = Listing {
            limit: self.cut,
            ..Listing::default()
        };
        for (job, kind) in jobs.iter().skip(start).take(limit as usize) {
            let identity = Job {
                impressions_completed: None,
                ..job.clone()
            };
            let record = match (kind, attrs) {
                (Kind::Good, _) => Record::Job(job.clone()),
                (Kind::Nameless, _) => Record::Unreadable(Unreadable {
                    job: None,
                    error: "job-id: bad".into(),
                }),
                (Kind::Hopeless, _) => return Err(IppError::TooLarge),
                (_, Attrs::Identity) => Record::Job(identity),
                (Kind::BadValue, Attrs::All) => Record::Unreadable(Unreadable {
                    job: Some(job.clone()),
                    error: "job-name: invalid string length: 65000, max: 255".into(),
                }),
                (Kind::TooLarge, Attrs::All) => return Err(IppError::TooLarge),
                (Kind::Breaks, Attrs::All) => {
                    listing.broken = Some("the attribute at byte 9 runs past the end".into());
                    break;
                }
            };
            listing.records.push(record);
        }
        Ok(listing)
    }
}

impl Source for Fake {
    fn page(
        &self,
        first: u32,
        limit: u32,
        attrs: Attrs,
    ) -> impl Future<Output = Result<Listing, IppError>> + Send {
        let answer = self.answer(first, limit, attrs);
        async move { answer }
    }
}

/// Every page of one walk, and how it ended.
async fn walk_all(source: &Fake) -> Result<(Vec<Page>, Walk), IppError> {
    let mut walk = Walk::new("p");
    let mut pages = Vec::new();
    while let Some(page) = walk.next(source).await? {
        pages.push(page);
    }
    Ok((pages, walk))
}

fn ids(pages: &[Page]) -> Vec<i32> {
    pages
        .iter()
        .flat_map(|p| p.jobs.iter().map(|j| j.id))
        .collect()
}

fn unreadable(pages: &[Page]) -> Vec<(i32, String)> {
    pages
        .iter()
        .flat_map(|p| p.unreadable.iter().map(|(j, e)| (j.id, e.clone())))
        .collect()
}

#[tokio::test]
async fn a_long_list_is_read_in_pages_of_500_each_job_once() {
    let printer = Fake::new(1234);
    let (pages, walk) = walk_all(&printer).await.expect("walk");
    assert_eq!(ids(&pages), (1..=1234).collect::<Vec<_>>());
    assert_eq!(walk.end(), Some(End::Listed));
    assert_eq!(walk.read_count(), 1234);
    assert!(walk.has_read(&job(1).key("p")) && !walk.has_read(&job(1235).key("p")));
    let asked: Vec<_> = printer.requests().iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(asked, vec![(1, 500), (501, 500), (1001, 500)]);
}

#[tokio::test]
async fn a_list_of_exactly_one_page_takes_one_more_request() {
    let printer = Fake::new(500);
    let (pages, walk) = walk_all(&printer).await.expect("walk");
    assert_eq!(ids(&pages).len(), 500);
    assert_eq!(walk.end(), Some(End::Listed));
    assert_eq!(printer.requests().len(), 2);
}

#[tokio::test]
async fn a_printer_that_ignores_first_index_is_read_once() {
    let mut short = Fake::new(30);
    short.ignores_first_index = true;
    let (pages, walk) = walk_all(&short).await.expect("walk");
    assert_eq!(ids(&pages).len(), 30);
    assert_eq!((walk.end(), short.requests().len()), (Some(End::Listed), 1));

    let mut long = Fake::new(700);
    long.ignores_first_index = true;
    let (pages, walk) = walk_all(&long).await.expect("walk");
    assert_eq!(ids(&pages), (1..=500).collect::<Vec<_>>());
    assert_eq!(walk.end(), Some(End::Repeated));
    assert_eq!(long.requests().len(), 2);
}

#[tokio::test]
async fn a_printer_that_cuts_pages_shorter_and_says_so_is_read_to_the_end() {
    let mut printer = Fake::new(450);
    printer.cut = Some(200);
    let (pages, walk) = walk_all(&printer).await.expect("walk");
    assert_eq!(ids(&pages).len(), 450);
    assert_eq!(walk.end(), Some(End::Listed));
    assert_eq!(printer.requests().len(), 3);
}

#[tokio::test]
async fn a_job_the_crate_refuses_costs_no_request() {
    let printer = Fake::new(600).with(99, Kind::BadValue);
    let (pages, _) = walk_all(&printer).await.expect("walk");
    assert_eq!(ids(&pages).len(), 599);
    assert_eq!(
        unreadable(&pages),
        vec![(
            100,
            "job-name: invalid string length: 65000, max: 255".to_string()
        )]
    );
    assert_eq!(printer.requests().len(), 2);
}

#[tokio::test]
async fn a_job_too_large_to_send_is_narrowed_down_by_halving() {
    let printer = Fake::new(1000).with(699, Kind::TooLarge);
    let (pages, walk) = walk_all(&printer).await.expect("walk");
    let mut read = ids(&pages);
    read.sort_unstable();
    assert_eq!(read.len(), 999);
    assert!(!read.contains(&700));
    assert_eq!(
        unreadable(&pages),
        vec![(700, "response larger than 8 MiB".to_string())]
    );
    assert_eq!(walk.end(), Some(End::Listed));
    let requests = printer.requests();
    // Page 2 (501..1000) halves 9 times down to job 700, each half with
    // its sibling; then job 700's identity; then page 3 (empty).
    assert!(requests.len() <= 1 + 2 * 9 + 1 + 1 + 1, "{requests:?}");
    assert_eq!(
        requests.iter().filter(|r| r.2 == Attrs::Identity).count(),
        1
    );
    assert!(requests.contains(&(700, 1, Attrs::Identity)));
}

#[tokio::test]
async fn a_job_whose_bytes_break_is_asked_for_alone_then_the_rest() {
    let printer = Fake::new(800).with(299, Kind::Breaks);
    let (pages, _) = walk_all(&printer).await.expect("walk");
    assert_eq!(ids(&pages).len(), 799);
    let (id, why) = &unreadable(&pages)[0];
    assert_eq!(*id, 300);
    assert_eq!(
        why,
        "not an IPP response: the attribute at byte 9 runs past the end"
    );
    let asked: Vec<_> = printer.requests();
    assert_eq!(
        asked[..4],
        [
            (1, 500, Attrs::All),
            (300, 1, Attrs::All),
            (300, 1, Attrs::Identity),
            (301, 200, Attrs::All),
        ]
    );
}

#[tokio::test]
async fn a_printer_that_sends_too_much_for_even_one_job_is_down() {
    let mut printer = Fake::new(3);
    printer.every = Some(|| IppError::TooLarge);
    let e = walk_all(&printer).await.err().expect("the printer fails");
    assert!(matches!(e, IppError::TooLarge), "{e:?}");
    // 500, 250, 125, 62, 31, 15, 7, 3, 1 jobs, then job 1's identity.
    assert_eq!(printer.requests().len(), 10);

    let mut printer = Fake::new(3);
    printer.every = Some(|| IppError::Timeout(std::time::Duration::from_secs(1)));
    let e = walk_all(&printer).await.err().expect("the printer fails");
    assert!(matches!(e, IppError::Timeout(_)), "{e:?}");
    assert_eq!(printer.requests().len(), 1, "a timeout is not narrowed");
}

#[tokio::test]
async fn a_job_nothing_can_be_read_of_is_skipped_among_jobs_that_can_be_read() {
    let printer = Fake::new(20).with(9, Kind::Hopeless);
    let (pages, _) = walk_all(&printer).await.expect("walk");
    assert_eq!(ids(&pages).len(), 19);
    assert_eq!(pages[0].nameless, 1);

    // Two in a row: the printer fails, not two jobs.
    let printer = Fake::new(20)
        .with(9, Kind::Hopeless)
        .with(10, Kind::Hopeless);
    let e = walk_all(&printer).await.err().expect("the printer fails");
    assert!(matches!(e, IppError::TooLarge), "{e:?}");

    // The first job of all: nothing was read from the printer.
    let printer = Fake::new(20).with(0, Kind::Hopeless);
    assert!(walk_all(&printer).await.is_err());
}

#[tokio::test]
async fn a_record_without_a_name_is_counted_and_skipped() {
    let printer = Fake::new(10).with(4, Kind::Nameless);
    let (pages, _) = walk_all(&printer).await.expect("walk");
    assert_eq!(ids(&pages).len(), 9);
    assert_eq!(pages[0].nameless, 1);
}

#[tokio::test]
async fn jobs_that_finish_during_a_walk_are_read_once_and_none_is_lost() {
    // Newest first, as CUPS lists finished jobs.
    let printer = Fake::new(0);
    printer
        .jobs
        .lock()
        .expect("jobs")
        .extend((1..=1200).rev().map(|id| (job(id), Kind::Good)));
    let mut w = Walk::new("p");
    let first = w.next(&printer).await.expect("page").expect("some");
    assert_eq!(first.jobs.len(), 500);
    // Three jobs finish: the list shifts by three.
    for id in 1201..=1203 {
        printer
            .jobs
            .lock()
            .expect("jobs")
            .insert(0, (job(id), Kind::Good));
    }
    let mut read: Vec<i32> = first.jobs.iter().map(|j| j.id).collect();
    while let Some(page) = w.next(&printer).await.expect("page") {
        read.extend(page.jobs.iter().map(|j| j.id));
    }
    read.sort_unstable();
    assert_eq!(read, (1..=1200).collect::<Vec<_>>(), "each once");
    // The next walk reads the new ones.
    let (pages, _) = walk_all(&printer).await.expect("walk");
    assert_eq!(ids(&pages).len(), 1203);
}

#[tokio::test]
async fn not_found_past_the_end_ends_the_walk() {
    struct Strict(Fake);
    impl Source for Strict {
        fn page(
            &self,
            first: u32,
            limit: u32,
            attrs: Attrs,
        ) -> impl Future<Output = Result<Listing, IppError>> + Send {
            let answer = if first > 500 {
                Err(IppError::Status {
                    code: NOT_FOUND,
                    name: "ClientErrorNotFound".into(),
                })
            } else {
                self.0.answer(first, limit, attrs)
            };
            async move { answer }
        }
    }
    let printer = Strict(Fake::new(500));
    let mut walk = Walk::new("p");
    let mut n = 0;
    while let Some(page) = walk.next(&printer).await.expect("page") {
        n += page.jobs.len();
    }
    assert_eq!((n, walk.end()), (500, Some(End::Listed)));
}
