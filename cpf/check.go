package cpf

import (
	"maps"
	"slices"
	"strings"

	"github.com/cardwright/cardwright/iso7816"
)

// Reserved secret variables (spec: the description fills SEC_PIN1,
// SEC_PIN2, SEC_PUK and SEC_OP; a profile may generate any of them). The
// blob name of SEC_X is X.
var reservedSecrets = []string{"SEC_PIN1", "SEC_PIN2", "SEC_PIN3", "SEC_PUK", "SEC_PUK1", "SEC_PUK2", "SEC_OP", "SEC_MAN"}

func isReservedSecret(name string) bool { return slices.Contains(reservedSecrets, name) }

// keywords may not be used as variable names (compared without case).
var keywords = []string{"cardmodel", "masterfile", "createdf", "createef", "enddf", "endfile",
	"file", "static", "dynamic", "data", "record", "createpin", "always", "never", "auto"}

// Built-in functions: statements and expression functions.
const (
	fnMakeCardEraseable = "makecarderaseable"
	fnBurnFuse          = "burnfuse"
	fnCreateFiles       = "createfiles"
	fnPutProfileName    = "persinfo_put_profilename"
	fnPutSec            = "persinfo_put_sec"
	fnEncryptSec        = "persinfo_encrypt_sec"
	fnSecRandom         = "secrandom"
	fnSec               = "persinfo_sec"
	fnPubRSAAndSec      = "persinfo_put_pubrsa_and_sec"
	fnDeactivate        = "deactivate"
	fnTerminate         = "terminate"
)

var statementFuncs = []string{fnMakeCardEraseable, fnBurnFuse, fnCreateFiles, fnPutProfileName, fnPutSec, fnEncryptSec, fnDeactivate, fnTerminate}
var exprFuncs = []string{fnSecRandom, fnSec, fnPubRSAAndSec}

// typ is the type of a value.
type typ int

const (
	tyUnknown typ = iota // after an error
	tyNumber
	tyBytes  // strings, byte strings, profile parameters
	tySecret // SEC_* variables, SECRANDOM
	tyBlob   // PERSINFO_SEC(): file content made when the files are created
)

func (t typ) String() string {
	return [...]string{"unknown", "number", "byte string", "secret", "PIN blob"}[t]
}

// SECRANDOM limits and alphabets.
const (
	minRandom = 1
	maxRandom = 64
)

var randomAlphabets = map[string]string{
	"digits": "0123456789",
	"alnum":  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
	"hex":    "0123456789ABCDEF",
}

// Default references of the well-known credential names (CreatePin
// without ref=): reference 0x80|n, n the security environment number of
// the compact condition byte (ISO/IEC 7816-4 §7.5.3).
var defaultRefs = map[string]byte{
	"PIN1": 0x81, "PIN2": 0x82, "PIN3": 0x83, "PUK": 0x84,
	"PUK1": 0x85, "PUK2": 0x86, "OP": 0x87, "MAN": 0x88,
}

// Access rule names and the access-mode bits they set (ISO/IEC 7816-4
// §7.5.3, tables 17 and 18).
var efRules = map[string]byte{
	"read": iso7816.AMRead, "update": iso7816.AMUpdate, "write": iso7816.AMWrite,
	"deactivate": iso7816.AMDeactivate, "activate": iso7816.AMActivate,
	"terminate": iso7816.AMTerminate, "delete": iso7816.AMDelete,
}

var dfRules = map[string]byte{
	"update": iso7816.AMDeleteChild, "deletechild": iso7816.AMDeleteChild,
	"create":   iso7816.AMCreateEF | iso7816.AMCreateDF,
	"createef": iso7816.AMCreateEF, "createdf": iso7816.AMCreateDF,
	"deactivate": iso7816.AMDeactivate, "activate": iso7816.AMActivate,
	"terminate": iso7816.AMTerminate, "delete": iso7816.AMDelete,
}

// opKind is an executable statement.
type opKind int

const (
	opAssign opKind = iota
	opProfileName
	opPutSec
	opEncrypt
	opCreatePin
	opCreateFiles
	opBurnFuse
	opLifeCycle // Deactivate(NAME), Terminate(NAME)
)

type op struct {
	kind opKind
	pos  Pos
	text string // the statement as shown in errors: "CreateFiles()"
	name string // assigned variable; SEC_* of PERSINFO_PUT_SEC; deactivate or terminate
	expr Expr
	pin  *pinSpec
	file *fnode // Deactivate, Terminate
}

// rule is one access condition as written: always, never or a credential.
type rule struct {
	pos  Pos
	cond string // "always", "never" or the credential name as declared
}

// fnode is a file of the MasterFile block.
type fnode struct {
	name     string
	pos      Pos
	df       bool
	fid      uint16
	aid      []byte
	sfi      byte
	linear   bool
	recSize  int
	records  int // linear: maximum number of records
	maxsize  int // transparent: size; DF: bytes for the subtree (0: not given)
	auto     bool
	rules    map[byte]rule
	parent   *fnode
	children []*fnode
	content  *FileBlock
	static   [][]byte // constant content: one data item or the records
	sizePos  Pos
}

// path returns the FIDs from below the MF down to n.
func (n *fnode) path() []uint16 {
	var p []uint16
	for ; n != nil && n.parent != nil; n = n.parent {
		p = append([]uint16{n.fid}, p...)
	}
	return p
}

func (n *fnode) kind() string {
	switch {
	case n.parent == nil:
		return "MF"
	case n.df:
		return "DF"
	}
	return "EF"
}

// pinSpec is a CreatePin statement.
type pinSpec struct {
	name    string
	pos     Pos
	ref     byte
	value   *Ident
	retries int
	minLen  int
	unblock string
	so      bool
}

type varInfo struct {
	pos   Pos
	typ   typ
	konst []byte // value of a constant byte string
	num   int64
	isNum bool
}

// Program is a checked profile bound to its dialect: Prepare turns it into
// APDUs for one card.
type Program struct {
	File      string
	Model     string
	Dialect   Dialect
	eraseable bool
	burnsFuse bool
	ops       []op
	mf        *fnode
	nodes     []*fnode // depth first, MF excluded
	byName    map[string]*fnode
	pins      map[string]*pinSpec // upper-case name
	pinOrder  []*pinSpec
	soRef     byte
	vars      map[string]*varInfo
	free      map[string]Pos // used, never assigned: parameters and description secrets
}

// Check parses and checks a profile against the built-in card models and
// those of models (card model → dialect). It returns every error found,
// sorted; nil when the profile is good. cardwright check uses it.
func Check(name string, src []byte, models map[string]string) ErrorList {
	_, err := Compile(name, src, Config{Models: models})
	if err == nil {
		return nil
	}
	if l, ok := err.(ErrorList); ok {
		return l
	}
	return ErrorList{{File: name, Msg: err.Error()}}
}

// Compile parses and checks a profile and resolves its card model. The
// error is an ErrorList of positioned errors. The checker runs after
// syntax errors too, on what the parser kept, so one run reports them all.
func Compile(name string, src []byte, cfg Config) (*Program, error) {
	errs := &errorSink{file: name}
	f := parse(name, src, errs)
	p := &Program{File: name}
	c := &checker{errs: errs, p: p, cfg: cfg}
	c.check(f)
	errs.list.Sort()
	if err := errs.list.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// checker checks a profile in two passes over its statements. The first
// (declare) records the declarations, since the rules of files may name
// credentials declared anywhere and CreateFiles() writes File blocks
// declared anywhere; the declarations are then checked as a whole. The
// second (checkStmt) checks the statements in order, one method per
// statement kind; the fields below carry what earlier statements leave
// for later ones.
type checker struct {
	errs *errorSink
	p    *Program
	cfg  Config

	// Declarations, from the first pass.
	model    *CardModelStmt
	mfBlock  *MasterFileBlock
	blocks   map[string]*FileBlock // File blocks by EF name
	assigned map[string]Pos        // every assignment of the profile

	// Statements so far, in the second pass: the first of each kind.
	eraseable, burn, createFiles, profName, encrypt *op
	putSecs                                         map[string]Pos // secrets put into the PIN blob
	lifeCycle                                       map[*fnode]*op // files deactivated or terminated
}

func (c *checker) errorf(p Pos, format string, args ...any) { c.errs.errorf(p, format, args...) }

func lower(s string) string { return strings.ToLower(s) }

func (c *checker) check(f *File) {
	p := c.p
	p.vars = map[string]*varInfo{}
	p.free = map[string]Pos{}
	p.pins = map[string]*pinSpec{}
	p.byName = map[string]*fnode{}
	c.assigned = map[string]Pos{}
	c.blocks = map[string]*FileBlock{}
	c.putSecs = map[string]Pos{}
	c.lifeCycle = map[*fnode]*op{}

	for _, s := range f.Stmts {
		c.declare(s)
	}
	c.checkCardModel(c.model)
	c.checkPins()
	if c.mfBlock != nil {
		c.checkMasterFile(c.mfBlock)
	}
	for name, b := range c.blocks {
		c.checkFileBlock(name, b)
	}

	for _, s := range f.Stmts {
		c.checkStmt(s)
	}
	if c.createFiles == nil {
		for _, n := range p.nodes {
			if n.content != nil {
				c.errorf(n.content.At, "File %s is never written: the profile has no CreateFiles()", n.name)
			}
		}
	}
	c.minLens()
	if c.eraseable != nil && c.burn == nil && c.createFiles == nil {
		c.errorf(c.eraseable.pos, "MakeCardEraseable() without CreateFiles(): no MF is created to carry the rule")
	}
}

// declare records the declaration s makes, if any; a second CardModel,
// MasterFile block, File block of an EF or assignment of a variable is an
// error, and only the first is checked.
func (c *checker) declare(s Stmt) {
	switch s := s.(type) {
	case *CardModelStmt:
		if c.model != nil {
			c.errorf(s.At, "second CardModel (first at %v)", c.model.At)
			return
		}
		c.model = s
	case *MasterFileBlock:
		if c.mfBlock != nil {
			c.errorf(s.At, "second MasterFile block (first at %v)", c.mfBlock.At)
			return
		}
		c.mfBlock = s
	case *FileBlock:
		if prev := c.blocks[s.Name]; prev != nil {
			c.errorf(s.NameAt, "second File block for %s (first at %v)", s.Name, prev.At)
			return
		}
		c.blocks[s.Name] = s
	case *CreatePinStmt:
		c.declarePin(s)
	case *AssignStmt:
		if prev, dup := c.assigned[s.Name]; dup {
			c.errorf(s.At, "%s assigned twice (first at %v); a variable is assigned once", s.Name, prev)
			return
		}
		c.assigned[s.Name] = s.At
	case *CallStmt:
		// declares nothing
	}
}

// checkStmt checks a statement in its place among the others. The
// declarations were checked after the first pass.
func (c *checker) checkStmt(s Stmt) {
	switch s := s.(type) {
	case *AssignStmt:
		c.checkAssign(s)
	case *CreatePinStmt:
		c.checkCreatePin(s)
	case *CallStmt:
		c.checkCall(s.Call)
	case *CardModelStmt, *MasterFileBlock, *FileBlock:
		// declarations, checked as a whole after the first pass
	}
}

// checkCardModel resolves the dialect of the profile's card model; s is
// the first CardModel statement, nil when there is none.
func (c *checker) checkCardModel(s *CardModelStmt) {
	switch {
	case s == nil:
		c.errorf(Pos{1, 1}, "no CardModel statement: name the card model, e.g. CardModel 'ISO7816'")
	case s.Model == nil: // a syntax error, reported
	default:
		c.p.Model = s.Model.Value
		d, err := c.cfg.dialectFor(c.p.Model)
		if err != nil {
			c.errorf(s.Model.At, "%v", err)
		}
		c.p.Dialect = d
	}
}

// checkCreatePin checks where a credential is created and its value;
// declarePin checked its attributes.
func (c *checker) checkCreatePin(s *CreatePinStmt) {
	pin := c.p.pins[strings.ToUpper(s.Name)]
	if pin == nil || pin.pos != s.At {
		return // a bad or second declaration, reported
	}
	if c.burn != nil {
		c.errorf(s.At, "CreatePin after BurnFuse() (at %v): credentials can only be created before the card is operational", c.burn.pos)
	}
	c.use(pin.value, tySecret, "the value of a credential")
	c.p.ops = append(c.p.ops, op{kind: opCreatePin, pos: s.At, text: "CreatePin " + s.Name, pin: pin})
}

// checkCall checks a call statement's function and its number of
// arguments, then the statement with the method for its function.
func (c *checker) checkCall(call *Call) {
	fn := lower(call.Name)
	if !slices.Contains(statementFuncs, fn) {
		if slices.Contains(exprFuncs, fn) {
			c.errorf(call.At, "%s() gives a value: use it in an assignment or as file data", call.Name)
		} else {
			c.errorf(call.At, "unknown function %s (statements: MakeCardEraseable, CreateFiles, BurnFuse, PERSINFO_PUT_PROFILENAME, PERSINFO_PUT_SEC, PERSINFO_ENCRYPT_SEC, Deactivate, Terminate)", call.Name)
		}
		return
	}
	want := 0
	if fn == fnPutProfileName || fn == fnPutSec || fn == fnDeactivate || fn == fnTerminate {
		want = 1
	}
	if call.Damaged {
		// Check what the syntax error left: the call is there, its
		// arguments are not all known.
		switch {
		case want == 0:
			call = &Call{At: call.At, Name: call.Name}
		case len(call.Args) > 0 && !isBad(call.Args[0]):
			call = &Call{At: call.At, Name: call.Name, Args: call.Args[:1]}
		default:
			if fn == fnPutSec {
				c.putSecs["("+call.At.String()+")"] = call.At // something to seal
			}
			return
		}
	}
	if len(call.Args) != want {
		c.errorf(call.At, "%s takes %d argument(s), not %d", call.Name, want, len(call.Args))
		return
	}
	switch fn {
	case fnMakeCardEraseable:
		c.checkMakeCardEraseable(call)
	case fnBurnFuse:
		c.checkBurnFuse(call)
	case fnCreateFiles:
		c.checkCreateFiles(call)
	case fnPutProfileName:
		c.checkPutProfileName(call)
	case fnPutSec:
		c.checkPutSec(call)
	case fnEncryptSec:
		c.checkEncryptSec(call)
	case fnDeactivate, fnTerminate:
		c.checkLifeCycle(call)
	}
}

// checkMakeCardEraseable checks MakeCardEraseable(): once, before the MF
// is created.
func (c *checker) checkMakeCardEraseable(call *Call) {
	switch {
	case c.eraseable != nil:
		c.errorf(call.At, "second MakeCardEraseable() (first at %v)", c.eraseable.pos)
	case c.createFiles != nil:
		c.errorf(call.At, "MakeCardEraseable() after CreateFiles() (at %v): the MF's delete rule is set when it is created", c.createFiles.pos)
	case c.burn != nil:
		c.errorf(call.At, "MakeCardEraseable() after BurnFuse() (at %v)", c.burn.pos)
	}
	c.eraseable = &op{pos: call.At, text: call.Name + "()"}
	c.p.eraseable = true
}

// checkBurnFuse checks BurnFuse(): once.
func (c *checker) checkBurnFuse(call *Call) {
	if c.burn != nil {
		c.errorf(call.At, "second BurnFuse() (first at %v)", c.burn.pos)
		return
	}
	o := op{kind: opBurnFuse, pos: call.At, text: call.Name + "()"}
	c.burn = &o
	c.p.burnsFuse = true
	c.p.ops = append(c.p.ops, o)
}

// checkCreateFiles checks CreateFiles(): once, with a MasterFile block,
// before BurnFuse(); the content of the File blocks is typed here, where
// it is evaluated.
func (c *checker) checkCreateFiles(call *Call) {
	switch {
	case c.createFiles != nil:
		c.errorf(call.At, "second CreateFiles() (first at %v)", c.createFiles.pos)
		return
	case c.mfBlock == nil:
		c.errorf(call.At, "CreateFiles() without a MasterFile block")
		return
	case c.burn != nil:
		c.errorf(call.At, "CreateFiles() after BurnFuse() (at %v): files are created before the card is operational", c.burn.pos)
	}
	o := op{kind: opCreateFiles, pos: call.At, text: call.Name + "()"}
	c.createFiles = &o
	c.contentUses(c.encrypt != nil)
	c.p.ops = append(c.p.ops, o)
}

// checkPutProfileName checks PERSINFO_PUT_PROFILENAME(name): once, with a
// byte string.
func (c *checker) checkPutProfileName(call *Call) {
	if c.profName != nil {
		c.errorf(call.At, "second PERSINFO_PUT_PROFILENAME (first at %v)", c.profName.pos)
		return
	}
	c.expr(call.Args[0], tyBytes, "the profile name")
	o := op{kind: opProfileName, pos: call.At, text: call.Name + "(…)", expr: call.Args[0]}
	c.profName = &o
	c.p.ops = append(c.p.ops, o)
}

// checkPutSec checks PERSINFO_PUT_SEC(SEC_…): a reserved secret, each
// once, before the blob is sealed.
func (c *checker) checkPutSec(call *Call) {
	id, ok := call.Args[0].(*Ident)
	if !ok || !isReservedSecret(id.Name) {
		c.errorf(call.Args[0].Pos(), "PERSINFO_PUT_SEC takes one of %s", strings.Join(reservedSecrets, ", "))
		return
	}
	if prev, dup := c.putSecs[id.Name]; dup {
		c.errorf(call.At, "%s put twice (first at %v)", id.Name, prev)
		return
	}
	if c.encrypt != nil {
		c.errorf(call.At, "PERSINFO_PUT_SEC after PERSINFO_ENCRYPT_SEC() (at %v): the blob is already sealed", c.encrypt.pos)
	}
	c.putSecs[id.Name] = call.At
	c.use(id, tySecret, "PERSINFO_PUT_SEC")
	c.p.ops = append(c.p.ops, op{kind: opPutSec, pos: call.At, text: call.Name + "(" + id.Name + ")", name: id.Name})
}

// checkEncryptSec checks PERSINFO_ENCRYPT_SEC(): once, after something
// was put into the blob.
func (c *checker) checkEncryptSec(call *Call) {
	switch {
	case c.encrypt != nil:
		c.errorf(call.At, "second PERSINFO_ENCRYPT_SEC() (first at %v)", c.encrypt.pos)
		return
	case len(c.putSecs) == 0:
		c.errorf(call.At, "PERSINFO_ENCRYPT_SEC() with no PERSINFO_PUT_SEC before it: nothing to seal")
	}
	o := op{kind: opEncrypt, pos: call.At, text: call.Name + "()"}
	c.encrypt = &o
	c.p.ops = append(c.p.ops, o)
}

// checkLifeCycle checks Deactivate(NAME) and Terminate(NAME) (ISO/IEC
// 7816-9 §8.4, §8.5, §8.6): NAME is a DF or EF of the MasterFile block,
// created by an earlier CreateFiles(); the statement comes before
// BurnFuse() (the profile holds no credential to satisfy the file's rule
// afterwards); a file changes state once, and not below a DF that already
// did.
func (c *checker) checkLifeCycle(call *Call) {
	id, ok := call.Args[0].(*Ident)
	if !ok {
		c.errorf(call.Args[0].Pos(), "%s takes the name of a DF or EF of the MasterFile block", call.Name)
		return
	}
	o := op{kind: opLifeCycle, pos: call.At, text: call.Name + "(" + id.Name + ")", name: lower(call.Name)}
	n := c.p.byName[id.Name]
	switch {
	case n == nil:
		c.errorf(id.At, "%s(%s): no DF or EF of that name in the MasterFile block", call.Name, id.Name)
		return
	case c.createFiles == nil:
		c.errorf(call.At, "%s(%s) before CreateFiles(): the file does not exist yet", call.Name, id.Name)
		return
	case c.burn != nil:
		c.errorf(call.At, "%s(%s) after BurnFuse() (at %v): change a file's life cycle while the card is being personalized", call.Name, id.Name, c.burn.pos)
		return
	}
	for a := n; a != nil; a = a.parent {
		if prev := c.lifeCycle[a]; prev != nil {
			if a == n {
				c.errorf(call.At, "%s already changes state at %v (%s)", n.name, prev.pos, prev.text)
			} else {
				c.errorf(call.At, "%s is below %s, which %s at %v makes unusable", n.name, a.name, prev.text, prev.pos)
			}
			return
		}
	}
	if o.name == fnTerminate {
		if path, ok := c.p.PersInfoFile(); ok {
			for a := c.nodeAt(path); a != nil; a = a.parent {
				if a == n {
					c.errorf(call.At, "Terminate(%s) makes the encrypted PINs in %s unreadable", n.name, c.nodeAt(path).name)
					return
				}
			}
		}
	}
	o.file = n
	c.lifeCycle[n] = &o
	c.p.ops = append(c.p.ops, o)
}

// nodeAt returns the file at path below the MF.
func (c *checker) nodeAt(path []uint16) *fnode {
	n := c.p.mf
	for _, fid := range path {
		var next *fnode
		for _, ch := range n.children {
			if ch.fid == fid {
				next = ch
				break
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}

// declarePin records a CreatePin statement and checks its attributes.
func (c *checker) declarePin(s *CreatePinStmt) {
	up := strings.ToUpper(s.Name)
	if prev := c.p.pins[up]; prev != nil {
		c.errorf(s.NameAt, "credential %s declared twice (first at %v)", s.Name, prev.pos)
		return
	}
	if slices.Contains(keywords, lower(s.Name)) {
		c.errorf(s.NameAt, "%s is a keyword, not a credential name", s.Name)
		return
	}
	pin := &pinSpec{name: s.Name, pos: s.At, retries: 3, ref: defaultRefs[up]}
	c.p.pins[up] = pin
	c.p.pinOrder = append(c.p.pinOrder, pin)
	seen := map[string]bool{}
	for _, a := range s.Attrs {
		n := lower(a.Name)
		if seen[n] {
			c.errorf(a.At, "attribute %s given twice", a.Name)
			continue
		}
		seen[n] = true
		if isBad(a.Value) {
			continue
		}
		switch n {
		case "value":
			id, ok := a.Value.(*Ident)
			if !ok {
				c.errorf(a.Value.Pos(), "value= takes a secret variable such as SEC_PIN1")
				continue
			}
			pin.value = id
		case "ref":
			v, ok := c.number(a, 0x81, 0x8E)
			if ok {
				pin.ref = byte(v)
			}
		case "retries":
			if v, ok := c.number(a, 1, 15); ok {
				pin.retries = int(v)
			}
		case "minlen":
			if v, ok := c.number(a, 1, maxRandom); ok {
				pin.minLen = int(v)
			}
		case "unblock":
			id, ok := a.Value.(*Ident)
			if !ok {
				c.errorf(a.Value.Pos(), "unblock= takes the name of another credential")
				continue
			}
			pin.unblock = id.Name
		case "so":
			id, ok := a.Value.(*Ident)
			switch {
			case ok && strings.EqualFold(id.Name, "yes"):
				pin.so = true
			case ok && strings.EqualFold(id.Name, "no"):
			default:
				c.errorf(a.Value.Pos(), "so= takes yes or no")
			}
		default:
			c.errorf(a.At, "unknown CreatePin attribute %s (value, ref, retries, minlen, unblock, so)", a.Name)
		}
	}
	if s.Damaged {
		return // the attributes after the syntax error are unknown
	}
	if pin.value == nil && !seen["value"] {
		c.errorf(s.At, "CreatePin %s needs value=SEC_…", s.Name)
	}
	if pin.ref == 0 && !seen["ref"] {
		c.errorf(s.NameAt, "CreatePin %s needs ref= (0x81..0x8E); only %s have a default", s.Name, strings.Join(slices.Sorted(maps.Keys(defaultRefs)), ", "))
	}
}

func (c *checker) checkPins() {
	refs := map[byte]*pinSpec{}
	var so *pinSpec
	for _, pin := range c.p.pinOrder {
		if pin.ref != 0 {
			if prev := refs[pin.ref]; prev != nil {
				c.errorf(pin.pos, "credentials %s and %s share reference %02X", prev.name, pin.name, pin.ref)
			} else {
				refs[pin.ref] = pin
			}
		}
		if pin.unblock != "" {
			u := c.p.pins[strings.ToUpper(pin.unblock)]
			switch {
			case u == nil:
				c.errorf(pin.pos, "CreatePin %s: unblock=%s names no CreatePin", pin.name, pin.unblock)
			case u == pin:
				c.errorf(pin.pos, "CreatePin %s cannot unblock itself", pin.name)
			}
		}
		if pin.so {
			if so != nil {
				c.errorf(pin.pos, "both %s and %s are marked so=yes; the card has one SO credential", so.name, pin.name)
			} else {
				so = pin
			}
		}
	}
	if so != nil {
		c.p.soRef = so.ref
	}
}

// minLens checks credentials whose value the profile assigns a literal or
// SECRANDOM(n) against their minlen: such a value is too short on every card.
func (c *checker) minLens() {
	for _, pin := range c.p.pinOrder {
		if pin.minLen == 0 || pin.value == nil {
			continue
		}
		for _, o := range c.p.ops {
			if o.kind != opAssign || o.name != pin.value.Name {
				continue
			}
			switch e := o.expr.(type) {
			case *StringLit:
				if len(e.Value) < pin.minLen {
					c.errorf(e.At, "%s has %d characters; credential %s needs minlen=%d", o.name, len(e.Value), pin.name, pin.minLen)
				}
			case *Call:
				if lower(e.Name) != fnSecRandom || len(e.Args) == 0 {
					continue
				}
				if n, ok := e.Args[0].(*NumberLit); ok && n.Value >= minRandom && n.Value < int64(pin.minLen) {
					c.errorf(n.At, "SECRANDOM(%s) is shorter than minlen=%d of credential %s", n.Text, pin.minLen, pin.name)
				}
			}
		}
	}
}

// number reads a numeric attribute in [lo, hi].
func (c *checker) number(a *Attr, lo, hi int64) (int64, bool) {
	n, ok := a.Value.(*NumberLit)
	if !ok {
		c.errorf(a.Value.Pos(), "%s= takes a number", a.Name)
		return 0, false
	}
	if n.Value < lo || n.Value > hi {
		c.errorf(n.At, "%s=%s out of range %d..%d", a.Name, n.Text, lo, hi)
		return 0, false
	}
	return n.Value, true
}

// checkAssign checks NAME = expression.
func (c *checker) checkAssign(s *AssignStmt) {
	p := c.p
	if c.assigned[s.Name] != s.At {
		return // the second assignment, already reported
	}
	switch {
	case slices.Contains(keywords, lower(s.Name)):
		c.errorf(s.At, "%s is a keyword, not a variable name", s.Name)
		return
	case slices.Contains(statementFuncs, lower(s.Name)) || slices.Contains(exprFuncs, lower(s.Name)):
		c.errorf(s.At, "%s is a function, not a variable name", s.Name)
		return
	}
	v := &varInfo{pos: s.At}
	if isReservedSecret(s.Name) {
		if lit, ok := s.Value.(*StringLit); ok {
			if len(lit.Value) == 0 || len(lit.Value) > maxRandom {
				c.errorf(lit.At, "a secret of %d bytes; want 1..%d", len(lit.Value), maxRandom)
			}
			v.typ = tySecret
		} else {
			v.typ = c.expr(s.Value, tySecret, s.Name)
		}
	} else {
		v.typ = c.expr(s.Value, tyUnknown, s.Name)
		switch e := s.Value.(type) {
		case *StringLit:
			v.konst = []byte(e.Value)
		case *BytesLit:
			v.konst = e.Value
		case *NumberLit:
			v.num, v.isNum = e.Value, true
		case *Ident:
			if w := p.vars[e.Name]; w != nil {
				v.konst, v.num, v.isNum = w.konst, w.num, w.isNum
			}
		}
		if v.typ == tyBlob {
			c.errorf(s.Value.Pos(), "the PIN blob is file content: use it as data in a File Dynamic block")
		}
	}
	p.vars[s.Name] = v
	p.ops = append(p.ops, op{kind: opAssign, pos: s.At, text: s.Name + " = …", name: s.Name, expr: s.Value})
}

// use checks a variable reference where want is expected.
func (c *checker) use(id *Ident, want typ, what string) typ {
	if id == nil {
		return tyUnknown
	}
	return c.expr(id, want, what)
}

// expr types an expression; want (unless tyUnknown) is the type expected
// by the context, what names the context for messages.
func (c *checker) expr(e Expr, want typ, what string) typ {
	var got typ
	switch e := e.(type) {
	case *StringLit, *BytesLit:
		got = tyBytes
	case *NumberLit:
		got = tyNumber
	case *Ident:
		if slices.Contains(keywords, lower(e.Name)) {
			c.errorf(e.At, "%s is a keyword, not a value", e.Name)
			return tyUnknown
		}
		if v := c.p.vars[e.Name]; v != nil {
			got = v.typ
			break
		}
		if at, later := c.assigned[e.Name]; later {
			c.errorf(e.At, "%s used before its assignment at %v", e.Name, at)
			return tyUnknown
		}
		if _, ok := c.p.free[e.Name]; !ok {
			c.p.free[e.Name] = e.At
		}
		got = tyBytes // a profile parameter
		if isReservedSecret(e.Name) {
			got = tySecret // filled by the encoding description
		}
	case *Call:
		if e.Damaged {
			return tyUnknown // a syntax error, reported
		}
		got = c.call(e)
	case *BadExpr:
		return tyUnknown
	}
	if got == tyUnknown || want == tyUnknown || got == want {
		return got
	}
	c.errorf(e.Pos(), "%s is a %v; %s needs a %v", describeExpr(e), got, what, want)
	return tyUnknown
}

func describeExpr(e Expr) string {
	switch e := e.(type) {
	case *Ident:
		return e.Name
	case *Call:
		return e.Name + "()"
	case *NumberLit:
		return e.Text
	case *StringLit:
		return "'" + e.Value + "'"
	}
	return "this value"
}

// call types an expression function call.
func (c *checker) call(e *Call) typ {
	fn := lower(e.Name)
	switch fn {
	case fnSecRandom:
		if len(e.Args) < 1 || len(e.Args) > 2 {
			c.errorf(e.At, "SECRANDOM takes a length and an optional alphabet ('digits', 'alnum' or 'hex')")
			return tyUnknown
		}
		n, ok := e.Args[0].(*NumberLit)
		if !ok {
			c.errorf(e.Args[0].Pos(), "SECRANDOM's length must be a number")
			return tyUnknown
		}
		if n.Value < minRandom || n.Value > maxRandom {
			c.errorf(n.At, "SECRANDOM length %s out of range %d..%d", n.Text, minRandom, maxRandom)
		}
		if len(e.Args) == 2 {
			s, ok := e.Args[1].(*StringLit)
			if !ok || randomAlphabets[lower(s.Value)] == "" {
				c.errorf(e.Args[1].Pos(), "SECRANDOM's alphabet must be 'digits', 'alnum' or 'hex'")
			}
		}
		return tySecret
	case fnSec, fnPubRSAAndSec:
		if len(e.Args) != 0 {
			c.errorf(e.At, "%s takes no arguments", e.Name)
		}
		return tyBlob
	}
	if slices.Contains(statementFuncs, fn) {
		c.errorf(e.At, "%s() is a statement and gives no value", e.Name)
	} else {
		c.errorf(e.At, "unknown function %s (values: SECRANDOM, PERSINFO_SEC, PERSINFO_PUT_PUBRSA_AND_SEC)", e.Name)
	}
	return tyUnknown
}

// checkMasterFile builds and checks the MasterFile block and the files
// declared in it.
func (c *checker) checkMasterFile(b *MasterFileBlock) {
	mf := &fnode{name: "MasterFile", pos: b.At, df: true, fid: iso7816.MFID, rules: map[byte]rule{}}
	c.p.mf = mf
	c.attrs(mf, b.Attrs, c.mfAttr)
	c.fileDecls(mf, b.Files, map[string]*fnode{})
}

// fileDecls builds and checks the files declared in parent, depth first:
// names are unique in the block, FIDs and SFIs among siblings, DF names
// (aids) in the tree.
func (c *checker) fileDecls(parent *fnode, decls []*FileDecl, aids map[string]*fnode) {
	fids := map[uint16]*fnode{}
	sfis := map[byte]*fnode{}
	for _, d := range decls {
		n := &fnode{name: d.Name, pos: d.At, df: d.DF, parent: parent, rules: map[byte]rule{}}
		if prev := c.p.byName[d.Name]; prev != nil {
			c.errorf(d.NameAt, "file %s declared twice (first at %v)", d.Name, prev.pos)
		} else {
			c.p.byName[d.Name] = n
		}
		if d.DF {
			c.checkCreateDf(n, d)
		} else {
			c.checkCreateEf(n, d)
		}
		if n.fid != 0 {
			if prev := fids[n.fid]; prev != nil {
				c.errorf(d.At, "%s and %s share FID %04X in %s", prev.name, n.name, n.fid, parent.name)
			} else if n.fid == parent.fid {
				c.errorf(d.At, "%s has the FID %04X of its parent %s", n.name, n.fid, parent.name)
			}
			fids[n.fid] = n
		}
		if n.sfi != 0 {
			if prev := sfis[n.sfi]; prev != nil {
				c.errorf(d.At, "%s and %s share SFI %d in %s", prev.name, n.name, n.sfi, parent.name)
			}
			sfis[n.sfi] = n
		}
		if n.aid != nil {
			if prev := aids[string(n.aid)]; prev != nil {
				c.errorf(d.At, "%s and %s share the DF name (aid) % X", prev.name, n.name, n.aid)
			}
			aids[string(n.aid)] = n
		}
		parent.children = append(parent.children, n)
		c.p.nodes = append(c.p.nodes, n)
		if d.DF {
			c.fileDecls(n, d.Children, aids)
		}
	}
}

// checkCreateDf checks the attributes of a CreateDf declaration (not the
// files below it).
func (c *checker) checkCreateDf(n *fnode, d *FileDecl) {
	seen := c.attrs(n, d.Attrs, c.dfAttr)
	if !d.Damaged && !seen["id"] {
		c.errorf(n.pos, "%s %s needs id=", n.kind(), n.name)
	}
}

// checkCreateEf checks the attributes of a CreateEf declaration and its
// size: records for a linear EF, maxsize= for a transparent one. After a
// syntax error in the attributes, missing ones are not reported.
func (c *checker) checkCreateEf(n *fnode, d *FileDecl) {
	seen := c.attrs(n, d.Attrs, c.efAttr)
	if d.Damaged {
		return
	}
	if !seen["id"] {
		c.errorf(n.pos, "%s %s needs id=", n.kind(), n.name)
	}
	if n.linear {
		if n.recSize == 0 {
			c.errorf(firstAttr(d.Attrs, "type").At, "a linear EF needs recordsize=")
		}
		if n.maxsize > 0 {
			c.errorf(n.sizePos, "a linear EF is sized with records=, not maxsize=")
		}
		n.auto = false
		return
	}
	if seen["recordsize"] || seen["records"] {
		c.errorf(n.pos, "recordsize= and records= need type=linear")
	}
	if !seen["maxsize"] && seen["id"] {
		c.errorf(n.pos, "EF %s needs maxsize= (a number or auto)", n.name)
	}
}

// firstAttr returns the first attribute called name (in lower case).
func firstAttr(attrs []*Attr, name string) *Attr {
	for _, a := range attrs {
		if lower(a.Name) == name {
			return a
		}
	}
	return nil
}

// attrs applies the attributes of a file declaration with attr (mfAttr,
// dfAttr or efAttr): each name once, values with a syntax error (already
// reported) skipped. It returns the names given, in lower case.
func (c *checker) attrs(n *fnode, attrs []*Attr, attr func(n *fnode, a *Attr, seen map[string]bool)) map[string]bool {
	seen := map[string]bool{}
	for _, a := range attrs {
		name := lower(a.Name)
		if seen[name] {
			c.errorf(a.At, "attribute %s given twice", a.Name)
			continue
		}
		seen[name] = true
		if isBad(a.Value) {
			continue
		}
		attr(n, a, seen)
	}
	return seen
}

// mfAttr applies an attribute of the MasterFile block: access rules only.
func (c *checker) mfAttr(n *fnode, a *Attr, _ map[string]bool) {
	am, ok := dfRules[lower(a.Name)]
	switch {
	case !ok:
		c.errorf(a.At, "%s has no attribute %s (%s)", n.kind(), a.Name, attrNames(n))
	case am == iso7816.AMDelete:
		c.errorf(a.At, "the MF's delete rule comes from MakeCardEraseable() and the so=yes credential, not from an attribute")
	default:
		c.rule(n, a, am)
	}
}

// dfAttr applies an attribute of a CreateDf.
func (c *checker) dfAttr(n *fnode, a *Attr, _ map[string]bool) {
	name := lower(a.Name)
	if am, ok := dfRules[name]; ok {
		c.rule(n, a, am)
		return
	}
	switch name {
	case "id":
		c.fid(n, a)
	case "maxsize":
		if c.maxsize(n, a) {
			c.errorf(a.Value.Pos(), "maxsize=auto is for EFs; give a DF a number or leave it out")
		}
	case "aid":
		b, ok := a.Value.(*BytesLit)
		if !ok || len(b.Value) < 1 || len(b.Value) > 16 {
			c.errorf(a.Value.Pos(), "aid= takes a byte string of 1 to 16 bytes")
			return
		}
		n.aid = b.Value
	default:
		c.errorf(a.At, "%s has no attribute %s (%s)", n.kind(), a.Name, attrNames(n))
	}
}

// efAttr applies an attribute of a CreateEf. A bad type= marks maxsize as
// seen, so the size is not reported missing too.
func (c *checker) efAttr(n *fnode, a *Attr, seen map[string]bool) {
	name := lower(a.Name)
	if am, ok := efRules[name]; ok {
		c.rule(n, a, am)
		return
	}
	switch name {
	case "id":
		c.fid(n, a)
	case "maxsize":
		n.auto = c.maxsize(n, a)
	case "sfi":
		if v, ok := c.number(a, 1, 30); ok {
			n.sfi = byte(v)
		}
	case "type":
		id, ok := a.Value.(*Ident)
		switch {
		case ok && strings.EqualFold(id.Name, "transparent"):
		case ok && strings.EqualFold(id.Name, "linear"):
			n.linear = true
		default:
			c.errorf(a.Value.Pos(), "type= takes transparent or linear")
			seen["maxsize"] = true
		}
	case "recordsize":
		if v, ok := c.number(a, 1, 255); ok {
			n.recSize = int(v)
		}
	case "records":
		if v, ok := c.number(a, 1, 254); ok {
			n.records = int(v)
		}
	default:
		c.errorf(a.At, "%s has no attribute %s (%s)", n.kind(), a.Name, attrNames(n))
	}
}

// fid reads id=, a file identifier other than the reserved ones.
func (c *checker) fid(n *fnode, a *Attr) {
	v, ok := c.number(a, 1, 0xFFFE)
	if !ok {
		return
	}
	switch uint16(v) {
	case iso7816.MFID, 0x3FFF:
		c.errorf(a.Value.Pos(), "FID %04X is reserved (ISO/IEC 7816-4 §7.1.1)", v)
	default:
		n.fid = uint16(v)
	}
}

// maxsize reads maxsize=, a number of bytes; it reports whether the value
// is auto instead.
func (c *checker) maxsize(n *fnode, a *Attr) (auto bool) {
	n.sizePos = a.Value.Pos()
	if id, ok := a.Value.(*Ident); ok && strings.EqualFold(id.Name, "auto") {
		return true
	}
	if v, ok := c.number(a, 1, 0x7FFF); ok {
		n.maxsize = int(v)
	}
	return false
}

func attrNames(n *fnode) string {
	switch {
	case n.parent == nil:
		return "rules: update, create, createef, createdf, deactivate, activate, terminate"
	case n.df:
		return "id, maxsize, aid; rules: update, create, createef, createdf, deactivate, activate, terminate, delete"
	}
	return "id, maxsize, sfi, type, recordsize, records; rules: read, update, write, deactivate, activate, terminate, delete"
}

// rule records an access rule value.
func (c *checker) rule(n *fnode, a *Attr, am byte) {
	id, ok := a.Value.(*Ident)
	if !ok {
		c.errorf(a.Value.Pos(), "%s= takes always, never or a credential name", a.Name)
		return
	}
	cond := lower(id.Name)
	if cond != "always" && cond != "never" {
		pin := c.p.pins[strings.ToUpper(id.Name)]
		if pin == nil {
			c.errorf(id.At, "%s=%s: no credential %s (give always, never or the name of a CreatePin)", a.Name, id.Name, id.Name)
			return
		}
		cond = pin.name
	}
	for bit := byte(1); bit < 0x80; bit <<= 1 {
		if am&bit != 0 {
			n.rules[bit] = rule{pos: a.At, cond: cond}
		}
	}
}

// checkFileBlock checks a File block against its EF.
func (c *checker) checkFileBlock(name string, b *FileBlock) {
	n := c.p.byName[name]
	switch {
	case c.p.mf == nil:
		c.errorf(b.NameAt, "File %s: there is no MasterFile block", name)
		return
	case n == nil:
		c.errorf(b.NameAt, "File %s: no EF of that name in the MasterFile block", name)
		return
	case n.df:
		c.errorf(b.NameAt, "File %s: %s is a DF; only EFs have content", name, name)
		return
	}
	n.content = b
	var dataLines int
	for _, l := range b.Lines {
		switch {
		case l.Key == "data" && n.linear:
			c.errorf(l.At, "%s is a linear EF: give its records with record = …", name)
		case l.Key == "record" && !n.linear:
			c.errorf(l.At, "%s is a transparent EF: give its content with data = …", name)
		case l.Key == "data":
			dataLines++
			if dataLines == 2 {
				c.errorf(l.At, "second data = in File %s", name)
			}
		}
	}
	var recs []*ContentLine
	for _, l := range b.Lines {
		if l.Key == "record" {
			recs = append(recs, l)
		}
	}
	if n.linear && n.records > 0 && len(recs) > n.records {
		c.errorf(recs[n.records].At, "%s holds %d records; this is record %d", name, n.records, n.records+1)
	}
	if len(b.Lines) == 0 {
		c.errorf(b.At, "File %s has no content", name)
	}
}

// contentUses types the content of every File block at the CreateFiles()
// statement, where it is evaluated; encrypted says the blob is sealed by
// then.
func (c *checker) contentUses(encrypted bool) {
	for _, n := range c.p.nodes {
		b := n.content
		if b == nil {
			continue
		}
		var static [][]byte
		total := 0
		for _, l := range b.Lines {
			t := c.expr(l.Value, tyUnknown, "file data")
			switch t {
			case tyNumber:
				c.errorf(l.Value.Pos(), "file data must be a byte string, not a number (write 0x{…})")
				continue
			case tySecret:
				c.errorf(l.Value.Pos(), "%s is a secret and cannot be written as file data", describeExpr(l.Value))
				continue
			case tyBlob:
				if !b.Dynamic {
					c.errorf(l.Value.Pos(), "%s() is made when the files are created: use File Dynamic", l.Value.(*Call).Name)
				} else if !encrypted {
					c.errorf(l.Value.Pos(), "%s() needs PERSINFO_ENCRYPT_SEC() before CreateFiles()", l.Value.(*Call).Name)
				}
				if n.linear {
					c.errorf(l.Value.Pos(), "the PIN blob goes into a transparent EF")
				}
				continue
			case tyUnknown:
				continue
			}
			k, ok := c.constant(l.Value)
			if !ok {
				if !b.Dynamic {
					c.errorf(l.Value.Pos(), "File Static content must be constant; %s is known only when the profile runs (use File Dynamic)", describeExpr(l.Value))
				}
				continue
			}
			if n.linear && len(k) != n.recSize {
				c.errorf(l.Value.Pos(), "record of %d bytes; %s has recordsize=%d", len(k), n.name, n.recSize)
			}
			static = append(static, k)
			total += len(k)
		}
		if len(static) == len(b.Lines) {
			n.static = static
			if !n.linear && !n.auto && total > n.maxsize && n.maxsize > 0 {
				c.errorf(b.Lines[0].Value.Pos(), "%d bytes of data do not fit %s (maxsize=%d)", total, n.name, n.maxsize)
			}
		}
	}
	for _, n := range c.p.nodes {
		if n.auto && n.content == nil {
			c.errorf(n.sizePos, "maxsize=auto needs a File block for %s", n.name)
		}
	}
	c.dfSizes(nil)
}

// constant returns the compile-time value of a byte-string expression.
func (c *checker) constant(e Expr) ([]byte, bool) {
	switch e := e.(type) {
	case *StringLit:
		return []byte(e.Value), true
	case *BytesLit:
		return e.Value, true
	case *Ident:
		if v := c.p.vars[e.Name]; v != nil && v.konst != nil {
			return v.konst, true
		}
	}
	return nil, false
}

// dfSizes checks that the EFs of every DF with a maxsize fit it. sizes
// gives the size of maxsize=auto EFs whose content is known only at
// Prepare; EFs of unknown size count 0.
func (c *checker) dfSizes(sizes map[*fnode]int) {
	var total func(n *fnode) int
	total = func(n *fnode) int {
		if !n.df {
			return efSize(n, sizes)
		}
		t := 0
		for _, ch := range n.children {
			t += total(ch)
		}
		if n.maxsize > 0 && t > n.maxsize {
			c.errorf(n.sizePos, "the EFs of %s take %d bytes; maxsize=%d", n.name, t, n.maxsize)
		}
		return max(t, n.maxsize)
	}
	total(c.p.mf)
}

// efSize is the bytes an EF is created with.
func efSize(n *fnode, sizes map[*fnode]int) int {
	switch {
	case n.linear:
		return n.recSize * n.records
	case n.auto:
		if s, ok := sizes[n]; ok {
			return s
		}
		if n.static != nil {
			return len(n.static[0])
		}
		return 0
	}
	return n.maxsize
}
