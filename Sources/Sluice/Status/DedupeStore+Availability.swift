import Synchronization

extension DedupeStore {
    /// Why the store did not answer a read of `probe`'s stored offsets within `timeout`, or `nil`
    /// when it did: the readiness check of a service's store.
    ///
    /// The read runs in a task of its own, so a store call that hangs holds no caller past the
    /// timeout.
    public func availabilityProblem(group: String, probe: [TopicPartition], timeout: Duration) async -> String? {
        let answer = Mutex<(settled: Bool, continuation: CheckedContinuation<String?, Never>?)>((false, nil))
        let settle: @Sendable (String?) -> Void = { problem in
            answer.withLock { state -> CheckedContinuation<String?, Never>? in
                guard !state.settled else { return nil }
                state.settled = true
                return state.continuation.take()
            }?.resume(returning: problem)
        }
        return await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
            answer.withLock { $0.continuation = continuation }
            let timer = Task {
                try await Task.sleep(for: timeout)
                settle("no answer within \(timeout)")
            }
            Task {
                do {
                    _ = try await self.storedOffsets(group: group, partitions: probe)
                    settle(nil)
                } catch {
                    settle((error as? SluiceError)?.message ?? "\(error)")
                }
                timer.cancel()
            }
        }
    }

    /// How many keys are parked for `group` on each partition (the partition of the record that
    /// parked the key), or `nil` when the store did not answer within `timeout`: for status pages.
    public func parkedKeyCounts(group: String, timeout: Duration) async -> [TopicPartition: Int]? {
        let answer = Mutex<(settled: Bool, continuation: CheckedContinuation<[TopicPartition: Int]?, Never>?)>((false, nil))
        let settle: @Sendable ([TopicPartition: Int]?) -> Void = { counts in
            answer.withLock { state -> CheckedContinuation<[TopicPartition: Int]?, Never>? in
                guard !state.settled else { return nil }
                state.settled = true
                return state.continuation.take()
            }?.resume(returning: counts)
        }
        return await withCheckedContinuation { (continuation: CheckedContinuation<[TopicPartition: Int]?, Never>) in
            answer.withLock { $0.continuation = continuation }
            let timer = Task {
                try await Task.sleep(for: timeout)
                settle(nil)
            }
            Task {
                let keys = try? await self.withTransaction { try await $0.parkedKeys(group: group, topic: nil) }
                var counts: [TopicPartition: Int] = [:]
                for key in keys ?? [] { counts[TopicPartition(topic: key.topic, partition: key.partition), default: 0] += 1 }
                settle(keys == nil ? nil : counts)
                timer.cancel()
            }
        }
    }
}
