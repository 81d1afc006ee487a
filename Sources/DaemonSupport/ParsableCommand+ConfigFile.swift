import ArgumentParser

extension ParsableCommand {
  /// The daemons' entry point: `--config FILE` settings first, then the
  /// command line (whose flags win), then run.
  public static func mainReadingConfigFile() {
    do {
      let arguments = try ConfigFile.expand(Array(CommandLine.arguments.dropFirst()), readFile: FileSystem.read)
      var command = try parseAsRoot(arguments)
      try command.run()
    } catch {
      exit(withError: error)
    }
  }
}
