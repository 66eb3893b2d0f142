// Package doctest holds helpers for tests that run documented curl
// examples (docs/recipes.md in e2e, docs/api.md in httpapi): splitting a
// shell command line into words with $VAR and ${VAR} expansion (Words),
// reading the curl options both pages use (ParseCurl), finding the
// numbers a pattern marks in a string (ReplaceNumbers, SplitNumbers), the
// offset between a page's indexes and a server's (Offset), and comparing
// JSON answers token by token, the order of fields included (Tokens,
// CompareJSON), with the normalisation both pages share (Normaliser).
// What a page's convention decides (which fields and patterns hold
// indexes, how 0 is treated, which options and headers count) stays with
// each harness.
package doctest
