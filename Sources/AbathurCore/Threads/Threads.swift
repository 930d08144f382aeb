#if canImport(Glibc)
import Glibc
#endif
import CLibc

/// POSIX threads, for the few places that use more than one core (compressing and inflating
/// gzip members). No thread outlives the call that started it: every one is joined.
enum Threads {
    /// The CPUs this process may run on (its affinity mask, as `taskset` or systemd's
    /// `CPUAffinity=` set it), at least 1.
    static var available: Int {
        let count = Int(abathur_available_cpus())
        return count > 0 ? count : max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    /// Starts `body` on a new thread. `idle`: the thread runs under `SCHED_IDLE`, so it gets a
    /// core only when nothing else wants it: the service the tools guard always wins.
    static func start(idle: Bool, _ body: @escaping () -> Void) throws -> pthread_t {
        let box = Unmanaged.passRetained(Body(idle: idle, run: body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { argument in
            let body = Unmanaged<Body>.fromOpaque(argument!).takeRetainedValue()
            if body.idle {
                // SCHED_IDLE (5, linux/sched.h): the lowest CPU priority there is. Failing to
                // lower it only costs the service some CPU; it never fails the run.
                var parameters = sched_param()
                _ = sched_setscheduler(0, 5, &parameters)
            }
            body.run()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(box).release()
            throw AbathurError(.internal, nil, "cannot start a thread: \(Errno(rc))")
        }
        return thread
    }

    static func join(_ thread: pthread_t) {
        _ = pthread_join(thread, nil)
    }

    private final class Body {
        let idle: Bool
        let run: () -> Void
        init(idle: Bool, run: @escaping () -> Void) {
            self.idle = idle
            self.run = run
        }
    }
}

/// A mutex and one condition variable, for the pipeline's bookkeeping.
final class Monitor: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        mutex.initialize(to: pthread_mutex_t())
        condition.initialize(to: pthread_cond_t())
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    /// Waits for a `broadcast`; call with the lock held.
    func wait() { pthread_cond_wait(condition, mutex) }
    func broadcast() { pthread_cond_broadcast(condition) }

    func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A value computed on a thread of its own while the caller does something else; `join`
/// waits for it (a thrown error is rethrown there). Dropped without a `join`, it still waits
/// for the thread, so no thread outlives it.
final class BackgroundWork<T>: @unchecked Sendable {
    /// What the thread writes; held by the thread itself, so it outlives this object's deinit.
    private final class Outcome: @unchecked Sendable {
        var result: Result<T, any Error>?
        var finished: Double = 0
    }

    private let outcome = Outcome()
    private var thread: pthread_t?

    init(_ body: @escaping () throws -> T) throws {
        let outcome = self.outcome
        thread = try Threads.start(idle: false) {
            outcome.result = Result { try body() }
            outcome.finished = Clock.monotonicSeconds()
        }
    }

    deinit { if let thread { Threads.join(thread) } }

    /// When the body ended, on `Clock.monotonicSeconds`; read it after `join`.
    var finished: Double { outcome.finished }

    func join() throws -> T {
        if let thread {
            Threads.join(thread)
            self.thread = nil
        }
        return try outcome.result!.get()
    }
}

/// A stop request from one thread to work running on another, checked by the work between
/// its chunks.
public final class Cancellation: @unchecked Sendable {
    private let monitor = Monitor()
    private var reason: (any Error)?

    public init() {}

    public func cancel(_ error: any Error) {
        monitor.locked { if reason == nil { reason = error } }
    }

    /// Throws the reason once `cancel` was called.
    func check() throws {
        if let reason = monitor.locked({ reason }) { throw reason }
    }
}
