//! Analytic cross-check of `P(410 on reconnect)` (issue 8, item 4; docs/analytic-410-model.md,
//! "Analytic model of P(410 on reconnect)").
//!
//! Setting (`sim-scenarios/sweep-410.toml`): a fixed ring of C events, Poisson writes at λ/s on
//! the watched resource, identical cluster-scope watchers that see every event, each losing its
//! connection at the Poisson times of `faults.watch_disconnect_rate` for `disconnect_duration`
//! (fixed or exponential).
//!
//! The model:
//! - **Ring boundary.** A watcher whose last event has RV r re-watches from r; the cache serves it
//!   iff r ≥ oldest − 1 (`watch_cache.rs index_after`), i.e. iff at most C events entered the
//!   cache after r (pod writes are the only revisions: no compactor). With N the number of events
//!   that entered the cache between the watcher's last event and the moment its re-watch reaches
//!   the server, `410 ⇔ N > C`; N ~ Poisson(λ·G) with the gap G = D + 2ℓ (ℓ = 1 ms network
//!   latency: the last event was sent ℓ before it reached the client, the re-watch arrives ℓ
//!   after it leaves). So `P(410 | D) = Q(C, λ(D + 2ℓ))`, `Q(C, μ) = P(Poisson(μ) > C)`
//!   = the regularised incomplete gamma `P(C+1, μ)`.
//! - **The gap D.** On the disconnect (time t0) the reflector backs off (`backoff_watch`); every
//!   attempt during the disconnect is refused and backs off again; the first attempt at or after
//!   t0 + d reconnects. With a fresh backoff the waits are W_k ~ U[b_k, 2b_k), b_k = 0.8·2^(k−1) s
//!   capped at 30 s, so `D = S_K`, S_k = W_1 + … + W_k, K = min{k : S_k ≥ d}. For d = 5 s,
//!   D = S_3 ∈ [5.6, 11.2) s. Closed forms ([`fresh_fixed`], [`fresh_exponential`]):
//!   fixed d:        P = Σ_k E[ Q(C, λ(S_k + 2ℓ)) · 1{S_(k−1) < d ≤ S_k} ]
//!   exponential(m): P = Σ_k E[ Q(C, λ(S_k + 2ℓ)) · (e^(−S_(k−1)/m) − e^(−S_k/m)) ]
//!   evaluated exactly on a 1 ms lattice from the densities of S_k (convolutions of uniforms).
//! - **The backoff is not always fresh.** client-go resets the backoff only after 2 min without
//!   a backoff; a watcher disconnected again within 2 min of its previous episode's last backoff
//!   (or of the backoff that follows a 410) starts higher up the ladder, so its D is longer. A
//!   disconnect that lands while the watcher is still disconnected extends the episode; one that
//!   lands during the relist after a 410 turns into a relist, not a reconnect. [`timing_model`]
//!   follows these rules (written from k8s-cacher-protocol.md §8, not from watchsim's code) for
//!   the simulation's watcher count, disconnect rate and duration, over its own shared Poisson
//!   write stream, and averages `Q(C, λ(D + 2ℓ))` over the reconnects (unbiased: given its D a
//!   reconnect's window holds writes after the watcher's disconnect, independent of D).
//!
//! The check, per grid point (one seed, the scenario's): the simulator's `reconnects`
//! (re-watches after a broken connection; clean re-watches after a watch timeout are counted
//! separately as `watch_resumes`) and `reconnects_too_old` give n and k; the model's p must lie in the
//! Wilson score interval of k/n on the effective sample size n / VIF, at family-wise 99 % over
//! the grid (Bonferroni: z ≈ 3.5 for 24 points; the points share the disconnect draws, so one
//! unlucky realisation moves several together). VIF (≥ 1) is the variance inflation from windows
//! of different watchers overlapping on the shared write stream, measured on the model's 48
//! replicates. In the "fresh" setting (200 watchers, 0.5 disconnects per watcher-hour) the
//! closed form alone must fall in the interval too. The number of reconnects must match the
//! model's within 4 standard deviations.

use rayon::prelude::*;

/// `[network] latency` (default 1 ms), one way.
const LATENCY_S: f64 = 0.001;
/// Wilson interval quantile: 99 % two-sided.
const Z99: f64 = 2.5758293035489;
/// Lattice step of the closed-form evaluation (every backoff base is a multiple of it).
const H: f64 = 0.001;

// ---------------------------------------------------------------------------------------------
// Poisson tail.

/// ln(n!) (exact sum below 30, Stirling's series above: error < 1e-15).
fn ln_factorial(n: u64) -> f64 {
    if n < 30 {
        return (2..=n).map(|i| (i as f64).ln()).sum();
    }
    let x = n as f64;
    x * x.ln() - x + 0.5 * (2.0 * std::f64::consts::PI * x).ln() + 1.0 / (12.0 * x)
        - 1.0 / (360.0 * x.powi(3))
        + 1.0 / (1260.0 * x.powi(5))
}

/// Q(c, μ) = P(Poisson(μ) > c), summed from the side whose terms decrease.
fn poisson_tail(c: u64, mu: f64) -> f64 {
    if mu <= 0.0 {
        return 0.0;
    }
    let ln_pmf = |k: u64| -mu + k as f64 * mu.ln() - ln_factorial(k);
    if mu < c as f64 + 1.0 {
        let mut k = c + 1;
        let mut term = ln_pmf(k).exp();
        let mut sum = 0.0;
        while term > 0.0 && term > sum * 1e-17 {
            sum += term;
            k += 1;
            term *= mu / k as f64;
        }
        sum.min(1.0)
    } else {
        let mut k = c;
        let mut term = ln_pmf(k).exp();
        let mut sum = 0.0;
        loop {
            sum += term;
            if k == 0 || term <= sum * 1e-17 {
                break;
            }
            term *= k as f64 / mu;
            k -= 1;
        }
        (1.0 - sum).max(0.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Backoff, from k8s-cacher-protocol.md §8.1.

/// Base of the k-th wait (k from 0) of a fresh backoff: 0.8·2^k s, capped at 30 s.
fn base(level: u32) -> f64 {
    (0.8 * 2f64.powi(level as i32)).min(30.0)
}

/// `wait.NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0)`: each call waits base·[1, 2)
/// and moves one level up; a call more than 2 min after the previous one starts from 0.8 s.
struct Backoff {
    level: u32,
    last: Option<f64>,
}

impl Backoff {
    fn new() -> Self {
        Backoff {
            level: 0,
            last: None,
        }
    }

    fn next(&mut self, now: f64, rng: &mut Rng) -> f64 {
        if self.last.is_some_and(|t| now - t > 120.0) {
            self.level = 0;
        }
        self.last = Some(now);
        let b = base(self.level);
        self.level = (self.level + 1).min(16);
        b * (1.0 + rng.unit())
    }
}

// ---------------------------------------------------------------------------------------------
// Closed forms for a fresh backoff.

/// Lattice size of base `level`.
fn base_cells(level: u32) -> usize {
    (base(level) / H).round() as usize
}

/// q[j] = Q(c, λ(j·H + 2ℓ)) and its prefix sums (qp[j] = Σ_{i<j} q[i]), for j < len.
fn tail_table(c: u64, lambda: f64, len: usize) -> (Vec<f64>, Vec<f64>) {
    let q: Vec<f64> = (0..len)
        .map(|j| poisson_tail(c, lambda * (j as f64 * H + 2.0 * LATENCY_S)))
        .collect();
    (q.clone(), prefix(&q))
}

fn prefix(v: &[f64]) -> Vec<f64> {
    let mut p = Vec::with_capacity(v.len() + 1);
    p.push(0.0);
    let mut acc = 0.0;
    for x in v {
        acc += x;
        p.push(acc);
    }
    p
}

/// The lattice density of S_(k−1) + W_k from that of S_(k−1) (`f`), truncated to `len` cells:
/// W_k uniform over the b..2b−1 cells.
fn convolve_uniform(f: &[f64], b: usize, len: usize) -> Vec<f64> {
    let fp = prefix(f);
    let at = |x: isize| -> f64 { fp[x.clamp(0, f.len() as isize) as usize] };
    (0..len)
        .map(|j| {
            let (hi, lo) = (j as isize - b as isize + 1, j as isize - 2 * b as isize + 1);
            (at(hi) - at(lo)) / b as f64
        })
        .collect()
}

/// P(410 on reconnect) for a disconnect of exactly `d` seconds and a fresh backoff.
fn fresh_fixed(c: u64, lambda: f64, d: f64) -> f64 {
    let dc = (d / H).ceil() as usize;
    let len = dc + 2 * base_cells(10) + 2;
    let (_, qp) = tail_table(c, lambda, len);
    // f: density of S_(k−1) on the cells below d (S_0 = 0).
    let mut f = vec![0.0; dc.max(1)];
    f[0] = 1.0;
    let mut p = 0.0;
    for level in 0.. {
        let b = base_cells(level);
        if f.iter().sum::<f64>() < 1e-15 {
            break;
        }
        for (i, &m) in f.iter().enumerate() {
            if m == 0.0 {
                continue;
            }
            let (lo, hi) = ((i + b).max(dc), i + 2 * b);
            if hi > lo {
                p += m * (qp[hi] - qp[lo]) / b as f64;
            }
        }
        f = convolve_uniform(&f, b, dc);
    }
    p
}

/// P(410 on reconnect) for exponential disconnects of mean `m` seconds and a fresh backoff.
fn fresh_exponential(c: u64, lambda: f64, m: f64) -> f64 {
    // Beyond 40 means the weight e^(−S/m) is below 1e-17.
    let len = (40.0 * m / H) as usize + 2 * base_cells(10) + 2;
    let (q, qp) = tail_table(c, lambda, len);
    let decay: Vec<f64> = (0..len).map(|j| (-(j as f64) * H / m).exp()).collect();
    let hq: Vec<f64> = q.iter().zip(&decay).map(|(a, b)| a * b).collect();
    let hp = prefix(&hq);
    let body = len - 2 * base_cells(10) - 2;
    let mut f = vec![0.0; body];
    f[0] = 1.0;
    let mut p = 0.0;
    for level in 0.. {
        let b = base_cells(level);
        let alive: f64 = f.iter().zip(&decay).map(|(a, e)| a * e).sum();
        if alive < 1e-15 {
            break;
        }
        for (i, &mass) in f.iter().enumerate() {
            if mass == 0.0 {
                continue;
            }
            let (lo, hi) = (i + b, i + 2 * b);
            p += mass * (decay[i] * (qp[hi] - qp[lo]) - (hp[hi] - hp[lo])) / b as f64;
        }
        f = convolve_uniform(&f, b, body);
    }
    p
}

// ---------------------------------------------------------------------------------------------
// The timing model (Monte Carlo over the reflector's retry timing; the ring term stays exact).

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

/// One grid point.
#[derive(Clone, Copy, Debug)]
struct Point {
    capacity: u64,
    rate: f64,
    /// Fixed duration or mean, seconds.
    disconnect_s: f64,
    exponential: bool,
    /// The watcher population and its disconnect rate.
    setup: Setup,
}

/// The watcher population, its disconnect rate and the run's length.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Setup {
    watchers: u32,
    disconnects_per_watcher_hour: f64,
    hours: f64,
}

/// What the timing model predicts for one grid point.
#[derive(Clone, Copy, Debug)]
struct Prediction {
    /// P(410 on a reconnect after a disconnect).
    p: f64,
    /// Mean and standard deviation of the number of such reconnects per run.
    n_mean: f64,
    n_sd: f64,
    /// Variance of the 410 count over its binomial variance (≥ 1).
    vif: f64,
}

enum Phase {
    /// ListAndWatch armed at this time.
    ListAndWatch(f64),
    /// Watching since `since`; `replayed` events came at once (a reconnect's catch-up).
    Watching { since: f64, replayed: u64 },
    /// Disconnected at `t0`, the next watch attempt at `at`.
    WaitWatch { at: f64, t0: f64 },
}

/// Number of cache events in [a, b].
fn count(writes: &[f64], a: f64, b: f64) -> u64 {
    (writes.partition_point(|&t| t <= b) - writes.partition_point(|&t| t < a)) as u64
}

/// One watcher over [0, end): returns (reconnects, 410s, Σ Q over reconnects).
fn watcher(point: &Point, writes: &[f64], end: f64, rng: &mut Rng) -> (u64, u64, f64) {
    let mean_gap = 3600.0 / point.setup.disconnects_per_watcher_hour;
    let duration = |rng: &mut Rng| {
        if point.exponential {
            rng.exponential(point.disconnect_s)
        } else {
            point.disconnect_s
        }
    };
    let (mut n, mut k, mut rb) = (0u64, 0u64, 0.0);
    let mut next_disconnect = rng.exponential(mean_gap);
    let mut until = 0.0f64;
    let mut backoff = Backoff::new();
    let mut phase = Phase::ListAndWatch(1.0 + rng.unit());
    loop {
        match phase {
            Phase::ListAndWatch(at) => {
                if next_disconnect < at {
                    until = next_disconnect + duration(rng);
                    next_disconnect += rng.exponential(mean_gap);
                    continue;
                }
                if at >= end {
                    break;
                }
                if at < until {
                    phase = Phase::ListAndWatch(at + backoff.next(at, rng));
                    continue;
                }
                // The LIST is served from the cache; its reply opens the watch 2ℓ later.
                let open = at + 2.0 * LATENCY_S;
                if next_disconnect < open {
                    let t = next_disconnect;
                    until = t + duration(rng);
                    next_disconnect += rng.exponential(mean_gap);
                    phase = Phase::ListAndWatch(t + backoff.next(t, rng));
                    continue;
                }
                phase = Phase::Watching {
                    since: open,
                    replayed: 0,
                };
            }
            Phase::Watching { since, replayed } => {
                let t0 = next_disconnect;
                if t0 >= end {
                    break;
                }
                until = t0 + duration(rng);
                next_disconnect += rng.exponential(mean_gap);
                // A watch under 1 s with no event is a "very short watch": relist.
                let very_short = t0 - since < 1.0
                    && replayed == 0
                    && count(writes, since + LATENCY_S, t0 - LATENCY_S) == 0;
                let w = backoff.next(t0, rng);
                phase = if very_short {
                    Phase::ListAndWatch(t0 + w)
                } else {
                    Phase::WaitWatch { at: t0 + w, t0 }
                };
            }
            Phase::WaitWatch { at, t0 } => {
                if next_disconnect < at {
                    until = next_disconnect + duration(rng);
                    next_disconnect += rng.exponential(mean_gap);
                    continue;
                }
                if at >= end {
                    break;
                }
                if at < until {
                    phase = Phase::WaitWatch {
                        at: at + backoff.next(at, rng),
                        t0,
                    };
                    continue;
                }
                n += 1;
                rb += poisson_tail(point.capacity, point.rate * (at - t0 + 2.0 * LATENCY_S));
                let events = count(writes, t0 - LATENCY_S, at + LATENCY_S);
                if events > point.capacity {
                    k += 1;
                    // The ERROR arrives 2ℓ later: ListAndWatch returns and backs off.
                    let t = at + 2.0 * LATENCY_S;
                    phase = Phase::ListAndWatch(t + backoff.next(t, rng));
                } else {
                    phase = Phase::Watching {
                        since: at,
                        replayed: events,
                    };
                }
            }
        }
    }
    (n, k, rb)
}

/// Runs `replicates` copies of the whole setting (shared write stream, every watcher).
fn timing_model(point: &Point, replicates: u64, seed: u64) -> Prediction {
    let setup = &point.setup;
    let end = setup.hours * 3600.0;
    let mut rng = Rng(seed ^ 0x5157_4EE9);
    let mut runs = Vec::new();
    let mut writes = Vec::new();
    for _ in 0..replicates {
        writes.clear();
        let mut t = rng.exponential(1.0 / point.rate);
        while t < end {
            writes.push(t);
            t += rng.exponential(1.0 / point.rate);
        }
        let (mut n, mut k, mut rb) = (0u64, 0u64, 0.0);
        for _ in 0..setup.watchers {
            let (a, b, c) = watcher(point, &writes, end, &mut rng);
            n += a;
            k += b;
            rb += c;
        }
        runs.push((n as f64, k as f64, rb));
    }
    let total_n: f64 = runs.iter().map(|r| r.0).sum();
    let p = runs.iter().map(|r| r.2).sum::<f64>() / total_n;
    let r = replicates as f64;
    let n_mean = total_n / r;
    let n_sd = (runs.iter().map(|x| (x.0 - n_mean).powi(2)).sum::<f64>() / (r - 1.0)).sqrt();
    let binomial = p * (1.0 - p) * total_n;
    let vif = if binomial < 1e-3 {
        1.0
    } else {
        let dev: f64 = runs.iter().map(|x| (x.1 - p * x.0).powi(2)).sum();
        (dev / binomial).max(1.0)
    };
    Prediction {
        p,
        n_mean,
        n_sd,
        vif,
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics.

/// Wilson score interval for k successes in n trials at quantile z.
fn wilson(k: f64, n: f64, z: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let p = k / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Φ⁻¹(p) for 0 < p < 1 (Acklam's rational approximation without refinement: error ~1e-5).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549671010984219,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

// ---------------------------------------------------------------------------------------------
// The simulator's side.

fn scenario_text() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sim-scenarios")
        .join("sweep-410.toml");
    std::fs::read_to_string(path).expect("sim-scenarios/sweep-410.toml")
}

/// The bundled scenario's watcher population, disconnect rate and duration.
fn bundled_setup(text: &str) -> Setup {
    let s = watchsim::scenario::load_str("sweep-410.toml", text, &[]).expect("scenario loads");
    Setup {
        watchers: s.clients[0].count as u32,
        disconnects_per_watcher_hour: s.faults.watch_disconnect_rate,
        hours: s.duration.as_ns() as f64 / 3.6e12,
    }
}

/// What one run of the simulator reports.
struct Simulated {
    /// Reconnects after a disconnect (`reconnects` excludes clean resumes after a watch timeout).
    n: u64,
    /// `reconnects_too_old`.
    k: u64,
    /// `reconnects` (watch-timeout resumes included) and `p_410_on_reconnect`.
    reconnects: u64,
    p_report: f64,
    seconds: f64,
}

fn simulate(text: &str, point: &Point) -> Simulated {
    let overrides = vec![
        format!("apiserver.watch_cache.capacity={}", point.capacity),
        format!("workload.0.rate={:?}", point.rate),
        format!(
            "faults.disconnect_duration=\"{}ms\"",
            (point.disconnect_s * 1000.0).round() as u64
        ),
        format!(
            "faults.disconnect_distribution=\"{}\"",
            if point.exponential {
                "exponential"
            } else {
                "fixed"
            }
        ),
        format!("clients.0.count={}", point.setup.watchers),
        format!(
            "faults.watch_disconnect_rate={:?}",
            point.setup.disconnects_per_watcher_hour
        ),
        format!(
            "duration=\"{}s\"",
            (point.setup.hours * 3600.0).round() as u64
        ),
    ];
    let t = std::time::Instant::now();
    let report = watchsim::sim::run_str("sweep-410.toml", text, &overrides, None)
        .expect("the run completes");
    let c = &report.clients;
    Simulated {
        n: c.reconnects,
        k: c.reconnects_too_old,
        reconnects: c.reconnects,
        p_report: c.p_410_on_reconnect,
        seconds: t.elapsed().as_secs_f64(),
    }
}

/// The grid: (a) the bundled setting (16 watchers, 6 disconnects per watcher-hour, 4 h): C × λ
/// for exponential disconnects of mean 5 s, and for fixed 5 s and 10 s at λ = 5 and 20 (at 50
/// every fixed-d reconnect is a 410); (b) a "fresh" setting where a watcher's disconnects are
/// far apart (200 watchers, 0.5 per watcher-hour), so the backoff is almost always fresh and the
/// closed form alone must fit too.
fn grid(bundled: Setup) -> Vec<Point> {
    let mut points = Vec::new();
    for &capacity in &[50, 100, 200] {
        for &rate in &[5.0, 20.0, 50.0] {
            points.push(Point {
                capacity,
                rate,
                disconnect_s: 5.0,
                exponential: true,
                setup: bundled,
            });
        }
        for &d in &[5.0, 10.0] {
            for &rate in &[5.0, 20.0] {
                points.push(Point {
                    capacity,
                    rate,
                    disconnect_s: d,
                    exponential: false,
                    setup: bundled,
                });
            }
        }
    }
    let fresh = Setup {
        watchers: 200,
        disconnects_per_watcher_hour: 0.5,
        hours: 4.0,
    };
    for &(capacity, d, exponential) in &[(50, 5.0, true), (100, 5.0, true), (50, 5.0, false)] {
        points.push(Point {
            capacity,
            rate: 5.0,
            disconnect_s: d,
            exponential,
            setup: fresh,
        });
    }
    points
}

/// Backoff carry-over changes the fresh-backoff answer by less than this in the fresh setting.
const FRESH_TOLERANCE: f64 = 0.01;

#[test]
fn poisson_tail_matches_direct_summation() {
    for &(c, mu) in &[
        (0u64, 0.5f64),
        (5, 2.0),
        (50, 40.0),
        (50, 70.0),
        (200, 150.0),
        (100, 100.0),
    ] {
        let mut pmf = (-mu).exp();
        let mut cdf = pmf;
        for k in 1..=c {
            pmf *= mu / k as f64;
            cdf += pmf;
        }
        let q = poisson_tail(c, mu);
        assert!(
            (q - (1.0 - cdf)).abs() < 1e-12,
            "Q({c}, {mu}) = {q}, direct {}",
            1.0 - cdf
        );
    }
    let z = normal_quantile(0.995);
    assert!((z - Z99).abs() < 1e-4, "{z}");
    let z = normal_quantile(1.0 - 0.01 / 42.0);
    assert!((z - 3.4938040039432687).abs() < 1e-4, "{z}");
}

#[test]
fn closed_forms_match_a_direct_sample_of_the_fresh_backoff() {
    // D = S_K for a fresh backoff, sampled directly; the closed forms must agree within 4 SE.
    let mut rng = Rng(7);
    for &(c, rate, d, exponential) in &[
        (50u64, 5.0, 5.0, false),
        (200, 20.0, 10.0, false),
        (100, 20.0, 5.0, true),
        (50, 5.0, 5.0, true),
    ] {
        let samples = 200_000;
        let mut sum = 0.0;
        let mut sum2 = 0.0;
        for _ in 0..samples {
            let d = if exponential { rng.exponential(d) } else { d };
            let mut b = Backoff::new();
            let mut s = 0.0;
            while s < d {
                s += b.next(0.0, &mut rng);
            }
            let q = poisson_tail(c, rate * (s + 2.0 * LATENCY_S));
            sum += q;
            sum2 += q * q;
        }
        let mean = sum / samples as f64;
        let se = ((sum2 / samples as f64 - mean * mean) / samples as f64).sqrt();
        let closed = if exponential {
            fresh_exponential(c, rate, d)
        } else {
            fresh_fixed(c, rate, d)
        };
        assert!(
            (closed - mean).abs() <= 4.0 * se + 2e-3,
            "C={c} λ={rate} d={d} exp={exponential}: closed form {closed:.4}, sample {mean:.4} ± {se:.4}"
        );
    }
    // For d = 5 s, D = S_3 ∈ [5.6, 11.2) s: with λ·D well inside (C, ∞) every reconnect is a 410.
    assert!(fresh_fixed(50, 20.0, 5.0) > 0.999);
    assert!(fresh_fixed(200, 5.0, 5.0) < 1e-6);
}

#[test]
fn simulated_p410_on_reconnect_matches_the_model() {
    let text = scenario_text();
    let points = grid(bundled_setup(&text));
    // Family-wise 99 % over the grid (Bonferroni): the points share the disconnect draws (common
    // random numbers), so one unlucky realisation moves several points together.
    let z = normal_quantile(1.0 - 0.01 / (2.0 * points.len() as f64));
    let started = std::time::Instant::now();
    let rows: Vec<_> = points
        .par_iter()
        .enumerate()
        .map(|(i, point)| {
            let sim = simulate(&text, point);
            let model = timing_model(point, 48, 1000 + i as u64);
            let fresh = if point.exponential {
                fresh_exponential(point.capacity, point.rate, point.disconnect_s)
            } else {
                fresh_fixed(point.capacity, point.rate, point.disconnect_s)
            };
            (*point, sim, model, fresh)
        })
        .collect();
    let mut table = format!(
        "P(410 on reconnect): simulated vs model; interval = Wilson at z = {z:.3} (family-wise 99 % over {} points) on n/VIF; * = outside the per-point Wilson 99 %\n\
         watchers  rate/w-h  dist   d     C   λ/s |    n    k  p_sim  interval        | p_model p_fresh   VIF  n_model | p_410_on_reconnect  sim_s\n",
        points.len()
    );
    let mut failures = Vec::new();
    for (point, sim, model, fresh) in &rows {
        let n_eff = sim.n as f64 / model.vif;
        let p_hat = sim.k as f64 / sim.n as f64;
        let (lo, hi) = wilson(p_hat * n_eff, n_eff, z);
        let (lo99, hi99) = wilson(p_hat * n_eff, n_eff, Z99);
        let is_fresh = point.setup.disconnects_per_watcher_hour < 1.0;
        let row = format!(
            "{:>8} {:>9} {:<6} {:>3}s {:>4} {:>4} | {:>4} {:>4} {:>6.3} [{:.3}, {:.3}]{} | {:>7.3} {:>7.3} {:>5.2} {:>4.0}±{:<3.0} | {:.3} of {:<6} {:>5.1}\n",
            point.setup.watchers,
            point.setup.disconnects_per_watcher_hour,
            if point.exponential { "exp" } else { "fixed" },
            point.disconnect_s,
            point.capacity,
            point.rate,
            sim.n,
            sim.k,
            p_hat,
            lo,
            hi,
            if (lo99..=hi99).contains(&model.p) {
                " "
            } else {
                "*"
            },
            model.p,
            fresh,
            model.vif,
            model.n_mean,
            model.n_sd,
            sim.p_report,
            sim.reconnects,
            sim.seconds,
        );
        table.push_str(&row);
        if sim.n < 200 {
            failures.push(format!("too few reconnects: {row}"));
        }
        if !(lo..=hi).contains(&model.p) {
            failures.push(format!("model outside the interval: {row}"));
        }
        if is_fresh {
            if !(lo..=hi).contains(fresh) {
                failures.push(format!("closed form outside the interval: {row}"));
            }
            if (model.p - fresh).abs() > FRESH_TOLERANCE {
                failures.push(format!("backoff carry-over not negligible: {row}"));
            }
        }
        if (sim.n as f64 - model.n_mean).abs() > 4.0 * model.n_sd + 1.0 {
            failures.push(format!("reconnect count off the model's: {row}"));
        }
        if (sim.p_report - sim.k as f64 / sim.reconnects as f64).abs() > 1e-12 {
            failures.push(format!("p_410_on_reconnect != too_old / reconnects: {row}"));
        }
    }
    table.push_str(&format!("{:.1} s\n", started.elapsed().as_secs_f64()));
    println!("{table}");
    assert!(failures.is_empty(), "{}\n{table}", failures.join("\n"));
}
