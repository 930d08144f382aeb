#if canImport(Glibc)
import Glibc
#endif

/// Numbered jobs (0, 1, 2, …) run on worker threads, and their results are consumed on the
/// calling thread in job order: the shape of compressing or inflating a file in chunks whose
/// output must come out in sequence.
///
/// - `claim(i)` runs under the pipeline's lock, so jobs are described in order (it may read a
///   header to learn where job `i` starts); it returns nil when there are no more jobs.
/// - `work` runs on a worker, outside the lock, with that worker's own state and the slot the
///   job owns.
/// - `consume` runs on the calling thread, in order.
///
/// At most `slots.count` jobs are in flight (claimed and not yet consumed), each in its own
/// slot, so memory is bounded by the slots whatever the input size. An error anywhere
/// (claim, work, consume) stops the pipeline: the workers finish the job in hand and are
/// joined before `run` throws. Errors surface in job order: the error of job `i` is thrown
/// only after jobs before it were consumed, so the same damaged input always gives the same
/// error.
final class OrderedPipeline<Job, Slot, Worker: AnyObject>: @unchecked Sendable {
    private enum Entry {
        case empty
        case done(index: Int, job: Job)
        case failed(index: Int, error: any Error)
    }

    private let monitor = Monitor()
    private let slots: [Slot]
    private var entries: [Entry]
    private let workers: [Worker]
    private let idle: Bool
    private var nextClaim = 0
    private var nextConsume = 0
    /// The number of jobs, once `claim` has said there are no more.
    private var end: Int?
    private var stopped = false
    private var cancelledBy: (any Error)?

    /// `workers`: one state per worker thread (a compressor, say), used by that thread only. `idle`: the workers run at
    /// idle CPU priority (`Threads.start`).
    init(slots: [Slot], workers: [Worker], idle: Bool) {
        precondition(!slots.isEmpty && !workers.isEmpty)
        self.slots = slots
        self.entries = Array(repeating: .empty, count: slots.count)
        self.workers = workers
        self.idle = idle
    }

    /// Stops the pipeline from another thread: `run` throws `error` once its workers are
    /// joined.
    func cancel(_ error: any Error) {
        monitor.locked {
            if cancelledBy == nil { cancelledBy = error }
            stopped = true
            monitor.broadcast()
        }
    }

    func run(claim: @escaping (Int) throws -> Job?,
             work: @escaping (Worker, Job, Slot) throws -> Void,
             consume: (Job, Slot) throws -> Void) throws {
        var threads: [pthread_t] = []
        defer {
            monitor.locked {
                stopped = true
                monitor.broadcast()
            }
            for thread in threads { Threads.join(thread) }
        }
        for worker in workers {
            threads.append(try Threads.start(idle: idle) { [unowned self] in
                self.workerLoop(worker, claim: claim, work: work)
            })
        }
        while true {
            let (index, job): (Int, Job)
            monitor.lock()
            while true {
                if let cancelledBy {
                    monitor.unlock()
                    throw cancelledBy
                }
                if let end, nextConsume == end {
                    monitor.unlock()
                    return
                }
                let slot = nextConsume % slots.count
                if case .done(let i, let j) = entries[slot], i == nextConsume {
                    (index, job) = (i, j)
                    break
                }
                if case .failed(let i, let error) = entries[slot], i == nextConsume {
                    stopped = true
                    monitor.broadcast()
                    monitor.unlock()
                    throw error
                }
                monitor.wait()
            }
            monitor.unlock()
            do {
                try consume(job, slots[index % slots.count])
            } catch {
                cancel(error)
                throw error
            }
            monitor.locked {
                entries[index % slots.count] = .empty
                nextConsume += 1
                monitor.broadcast()
            }
        }
    }

    private func workerLoop(_ worker: Worker, claim: (Int) throws -> Job?, work: (Worker, Job, Slot) throws -> Void) {
        monitor.lock()
        while true {
            if stopped || end != nil {
                monitor.unlock()
                return
            }
            guard nextClaim < nextConsume + slots.count else {
                monitor.wait()
                continue
            }
            let index = nextClaim
            let job: Job
            do {
                guard let claimed = try claim(index) else {
                    end = index
                    monitor.broadcast()
                    continue
                }
                job = claimed
            } catch {
                entries[index % slots.count] = .failed(index: index, error: error)
                end = index + 1
                monitor.broadcast()
                continue
            }
            nextClaim += 1
            monitor.unlock()
            let entry: Entry
            do {
                try work(worker, job, slots[index % slots.count])
                entry = .done(index: index, job: job)
            } catch {
                entry = .failed(index: index, error: error)
            }
            monitor.lock()
            entries[index % slots.count] = entry
            monitor.broadcast()
        }
    }
}
