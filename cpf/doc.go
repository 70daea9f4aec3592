// Package cpf implements the card-profile language (.cpf): how a blank
// smart card is laid out, its files and their content, its PINs and PUKs,
// its access rules and its life cycle. docs/cpf.md is the reference.
//
// A profile goes through three stages, each ending before the next begins:
//
//   - Compile lexes, parses and checks the source, needing neither a card nor
//     the job's values; every error is reported at once, positioned, as an
//     ErrorList. Check does the same for cardwright check.
//   - Program.Prepare binds the job's parameters and secrets, draws
//     SECRANDOM, seals the PIN blob (package pinblob) and builds every APDU,
//     still before any card I/O.
//   - Plan.Execute sends the APDUs to an iso7816.Card in order; a failure is
//     an *ExecError naming the statement, the APDU and the status word.
//
// DeleteProfile erases a card back to its virgin state, and ReadFile reads
// an EF back. The package does no I/O of its own beyond the iso7816.Card it
// is given and builds with CGO_ENABLED=0.
package cpf
