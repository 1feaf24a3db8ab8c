"""The live core: one synchronous, transport-free owner of the graph, the identity alias
merge, the detection engine and the window clock. The live server and every replay (train,
evaluate, tests, the notebook) drive this same core, so a figure measured on a replay is a
figure of the code that serves. It answers in typed events that defence, the read model and
metrics subscribe to."""
