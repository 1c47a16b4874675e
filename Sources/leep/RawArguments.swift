#if canImport(Glibc)
import Glibc
#endif

/// The arguments as the process received them. Swift's `CommandLine.arguments` repairs bytes
/// that are not UTF-8 (each becomes U+FFFD), so a name typed in another encoding would be
/// published as a different name without a word; leep refuses it instead.
enum RawArguments {
    /// The first of `options` (`--model`, …) whose value is not valid UTF-8, if any. Other
    /// arguments may be any bytes: a path is handed to the system as it was given.
    static func firstNotUTF8(among options: Set<String>) -> String? {
        let arguments = (0..<Int(CommandLine.argc)).map { index in
            CommandLine.unsafeArgv[index].map { Array(UnsafeRawBufferPointer(start: $0, count: strlen($0))) } ?? []
        }
        for (index, bytes) in arguments.enumerated().dropFirst() where String(validating: bytes, as: UTF8.self) == nil {
            // --option=value, or --option value.
            let name = bytes.firstIndex(of: UInt8(ascii: "=")).map { Array(bytes[..<$0]) } ?? arguments[index - 1]
            let option = String(decoding: name, as: UTF8.self)
            if options.contains(option) { return option }
        }
        return nil
    }
}
