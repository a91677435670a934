module legacyharness

go 1.19
