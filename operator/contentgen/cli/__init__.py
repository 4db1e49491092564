"""The `contentgen` command line. Each subcommand lives in its own module with
`configure(parser)` and `run(args) -> exit code`; heavy imports happen inside `run`."""
