#if DEBUG || LEEP_FUZZ  // @testable import needs a module built for testing (debug, or ops/fuzz's -enable-testing)
import WireFormat

@testable import Pipeline

/// Manifest assembly: a run's ledger fed manifest parts of its shards — honest, republished,
/// out of order, or with a list, a count or a name wrong — among partials and the odd raw frame.
/// Until the ledger fails the run (after which the state machine applies nothing more), the
/// assembled manifests must be what docs/wire-format.md says: every shard's chunks tile its
/// rows, and nothing is accepted that they do not list (`LedgerInvariants`).
enum ManifestAssemblyTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let world = RunWorld(&input)
        var ledger = RunLedger(run: RunWorld.identity.id)
        while !input.isAtEnd {
            let frames: [Frame] = switch input.int(in: 0...7) {
            case 0...4: [world.manifest(&input)].compactMap(RunWorld.delivered)
            case 5, 6: world.partial(&input).compactMap(RunWorld.delivered)
            default: RunWorld.rawFrame(&input).map { [$0] } ?? []
            }
            for frame in frames {
                if case .failure(let reason) = ledger.apply(frame) {
                    require(!reason.isEmpty, "a failure without a reason")
                    return
                }
                LedgerInvariants.check(ledger)
            }
        }
    }
}
#endif
