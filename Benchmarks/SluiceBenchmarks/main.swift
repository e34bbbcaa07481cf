print("sluice-benchmarks: wired up in a later step")
