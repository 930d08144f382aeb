import AbathurCommands

ToolMain.main(CommandLine.arguments)
