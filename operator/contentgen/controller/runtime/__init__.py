"""The operator's controller runtime, apart from its policy: what client-go and
controller-runtime give a Go controller, in short. `informer` watches the kinds the operator does
not own (Jobs, pods) into stores; `workqueue` hands resources' keys to a fixed number of workers;
`leader` holds the Lease so that one replica acts, its writes fenced. None of them knows a kind,
a status or a decision."""
