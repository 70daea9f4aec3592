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

type checker struct {
	errs *errorSink
	p    *Program
	cfg  Config

	assigned map[string]Pos // every assignment of the profile
	seen     map[string]bool
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

	// Declarations first: the rules of files may name credentials declared
	// anywhere, and CreateFiles() uses blocks declared anywhere.
	var mfBlock *MasterFileBlock
	var model *CardModelStmt
	blocks := map[string]*FileBlock{}
	for _, s := range f.Stmts {
		switch s := s.(type) {
		case *CardModelStmt:
			if model != nil {
				c.errorf(s.At, "second CardModel (first at %v)", model.At)
				continue
			}
			model = s
		case *MasterFileBlock:
			if mfBlock != nil {
				c.errorf(s.At, "second MasterFile block (first at %v)", mfBlock.At)
				continue
			}
			mfBlock = s
		case *FileBlock:
			if prev := blocks[s.Name]; prev != nil {
				c.errorf(s.NameAt, "second File block for %s (first at %v)", s.Name, prev.At)
				continue
			}
			blocks[s.Name] = s
		case *CreatePinStmt:
			c.pinDecl(s)
		case *AssignStmt:
			if prev, dup := c.assigned[s.Name]; dup {
				c.errorf(s.At, "%s assigned twice (first at %v); a variable is assigned once", s.Name, prev)
				continue
			}
			c.assigned[s.Name] = s.At
		}
	}
	switch {
	case model == nil:
		c.errorf(Pos{1, 1}, "no CardModel statement: name the card model, e.g. CardModel 'ISO7816'")
	case model.Model == nil: // a syntax error, reported
	default:
		p.Model = model.Model.Value
		d, err := c.cfg.dialectFor(p.Model)
		if err != nil {
			c.errorf(model.Model.At, "%v", err)
		}
		p.Dialect = d
	}
	c.checkPins()
	if mfBlock != nil {
		c.fileTree(mfBlock)
	}
	for name, b := range blocks {
		c.contentDecl(name, b)
	}

	// Then the statements in order.
	var createFiles, burn, eraseable, encrypt, profName *op
	var putSecs = map[string]Pos{}
	lifeCycle := map[*fnode]*op{} // files deactivated or terminated
	for _, s := range f.Stmts {
		switch s := s.(type) {
		case *AssignStmt:
			c.assign(s)
		case *CreatePinStmt:
			pin := p.pins[strings.ToUpper(s.Name)]
			if pin == nil || pin.pos != s.At {
				continue
			}
			if burn != nil {
				c.errorf(s.At, "CreatePin after BurnFuse() (at %v): credentials can only be created before the card is operational", burn.pos)
			}
			c.use(pin.value, tySecret, "the value of a credential")
			p.ops = append(p.ops, op{kind: opCreatePin, pos: s.At, text: "CreatePin " + s.Name, pin: pin})
		case *CallStmt:
			call := s.Call
			fn := lower(call.Name)
			o := op{pos: call.At, text: call.Name + "()"}
			if !slices.Contains(statementFuncs, fn) {
				if slices.Contains(exprFuncs, fn) {
					c.errorf(call.At, "%s() gives a value: use it in an assignment or as file data", call.Name)
				} else {
					c.errorf(call.At, "unknown function %s (statements: MakeCardEraseable, CreateFiles, BurnFuse, PERSINFO_PUT_PROFILENAME, PERSINFO_PUT_SEC, PERSINFO_ENCRYPT_SEC, Deactivate, Terminate)", call.Name)
				}
				continue
			}
			want := 0
			if fn == fnPutProfileName || fn == fnPutSec || fn == fnDeactivate || fn == fnTerminate {
				want = 1
			}
			if call.Damaged {
				// Check what the syntax error left: the call is there,
				// its arguments are not all known.
				switch {
				case want == 0:
					call = &Call{At: call.At, Name: call.Name}
				case len(call.Args) > 0 && !isBad(call.Args[0]):
					call = &Call{At: call.At, Name: call.Name, Args: call.Args[:1]}
				default:
					if fn == fnPutSec {
						putSecs["("+call.At.String()+")"] = call.At
					}
					continue
				}
			}
			if len(call.Args) != want {
				c.errorf(call.At, "%s takes %d argument(s), not %d", call.Name, want, len(call.Args))
				continue
			}
			switch fn {
			case fnMakeCardEraseable:
				switch {
				case eraseable != nil:
					c.errorf(call.At, "second MakeCardEraseable() (first at %v)", eraseable.pos)
				case createFiles != nil:
					c.errorf(call.At, "MakeCardEraseable() after CreateFiles() (at %v): the MF's delete rule is set when it is created", createFiles.pos)
				case burn != nil:
					c.errorf(call.At, "MakeCardEraseable() after BurnFuse() (at %v)", burn.pos)
				}
				eraseable = &o
				p.eraseable = true
			case fnBurnFuse:
				if burn != nil {
					c.errorf(call.At, "second BurnFuse() (first at %v)", burn.pos)
					continue
				}
				o.kind = opBurnFuse
				burn = &o
				p.burnsFuse = true
				p.ops = append(p.ops, o)
			case fnCreateFiles:
				switch {
				case createFiles != nil:
					c.errorf(call.At, "second CreateFiles() (first at %v)", createFiles.pos)
					continue
				case mfBlock == nil:
					c.errorf(call.At, "CreateFiles() without a MasterFile block")
					continue
				case burn != nil:
					c.errorf(call.At, "CreateFiles() after BurnFuse() (at %v): files are created before the card is operational", burn.pos)
				}
				o.kind = opCreateFiles
				createFiles = &o
				c.contentUses(blocks, encrypt != nil)
				p.ops = append(p.ops, o)
			case fnPutProfileName:
				if profName != nil {
					c.errorf(call.At, "second PERSINFO_PUT_PROFILENAME (first at %v)", profName.pos)
					continue
				}
				c.expr(call.Args[0], tyBytes, "the profile name")
				o.kind, o.expr = opProfileName, call.Args[0]
				o.text = call.Name + "(…)"
				profName = &o
				p.ops = append(p.ops, o)
			case fnPutSec:
				id, ok := call.Args[0].(*Ident)
				if !ok || !isReservedSecret(id.Name) {
					c.errorf(call.Args[0].Pos(), "PERSINFO_PUT_SEC takes one of %s", strings.Join(reservedSecrets, ", "))
					continue
				}
				if prev, dup := putSecs[id.Name]; dup {
					c.errorf(call.At, "%s put twice (first at %v)", id.Name, prev)
					continue
				}
				if encrypt != nil {
					c.errorf(call.At, "PERSINFO_PUT_SEC after PERSINFO_ENCRYPT_SEC() (at %v): the blob is already sealed", encrypt.pos)
				}
				putSecs[id.Name] = call.At
				c.use(id, tySecret, "PERSINFO_PUT_SEC")
				o.kind, o.name = opPutSec, id.Name
				o.text = call.Name + "(" + id.Name + ")"
				p.ops = append(p.ops, o)
			case fnDeactivate, fnTerminate:
				o.kind, o.name = opLifeCycle, fn
				if n := c.lifeCycle(call, &o, createFiles, burn, lifeCycle); n != nil {
					o.file = n
					lifeCycle[n] = &o
					p.ops = append(p.ops, o)
				}
			case fnEncryptSec:
				switch {
				case encrypt != nil:
					c.errorf(call.At, "second PERSINFO_ENCRYPT_SEC() (first at %v)", encrypt.pos)
					continue
				case len(putSecs) == 0:
					c.errorf(call.At, "PERSINFO_ENCRYPT_SEC() with no PERSINFO_PUT_SEC before it: nothing to seal")
				}
				o.kind = opEncrypt
				encrypt = &o
				p.ops = append(p.ops, o)
			}
		}
	}
	if createFiles == nil {
		for _, n := range p.nodes {
			if n.content != nil {
				c.errorf(n.content.At, "File %s is never written: the profile has no CreateFiles()", n.name)
			}
		}
	}
	c.minLens()
	if eraseable != nil && burn == nil && createFiles == nil {
		c.errorf(eraseable.pos, "MakeCardEraseable() without CreateFiles(): no MF is created to carry the rule")
	}
}

// lifeCycle checks Deactivate(NAME) and Terminate(NAME) (ISO/IEC 7816-9
// §8.4, §8.5, §8.6): NAME is a DF or EF of the MasterFile block, created by
// an earlier CreateFiles(); the statement comes before BurnFuse() (the
// profile holds no credential to satisfy the file's rule afterwards); a
// file changes state once, and not below a DF that already did. It
// returns the file, or nil after an error.
func (c *checker) lifeCycle(call *Call, o *op, createFiles, burn *op, done map[*fnode]*op) *fnode {
	id, ok := call.Args[0].(*Ident)
	if !ok {
		c.errorf(call.Args[0].Pos(), "%s takes the name of a DF or EF of the MasterFile block", call.Name)
		return nil
	}
	o.text = call.Name + "(" + id.Name + ")"
	n := c.p.byName[id.Name]
	switch {
	case n == nil:
		c.errorf(id.At, "%s(%s): no DF or EF of that name in the MasterFile block", call.Name, id.Name)
		return nil
	case createFiles == nil:
		c.errorf(call.At, "%s(%s) before CreateFiles(): the file does not exist yet", call.Name, id.Name)
		return nil
	case burn != nil:
		c.errorf(call.At, "%s(%s) after BurnFuse() (at %v): change a file's life cycle while the card is being personalized", call.Name, id.Name, burn.pos)
		return nil
	}
	for a := n; a != nil; a = a.parent {
		if prev := done[a]; prev != nil {
			if a == n {
				c.errorf(call.At, "%s already changes state at %v (%s)", n.name, prev.pos, prev.text)
			} else {
				c.errorf(call.At, "%s is below %s, which %s at %v makes unusable", n.name, a.name, prev.text, prev.pos)
			}
			return nil
		}
	}
	if lower(call.Name) == fnTerminate {
		if path, ok := c.p.PersInfoFile(); ok {
			for a := c.nodeAt(path); a != nil; a = a.parent {
				if a == n {
					c.errorf(call.At, "Terminate(%s) makes the encrypted PINs in %s unreadable", n.name, c.nodeAt(path).name)
					return nil
				}
			}
		}
	}
	return n
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

// pinDecl records a CreatePin statement and checks its attributes.
func (c *checker) pinDecl(s *CreatePinStmt) {
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

// assign checks NAME = expression.
func (c *checker) assign(s *AssignStmt) {
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

// fileTree builds and checks the MasterFile block.
func (c *checker) fileTree(b *MasterFileBlock) {
	mf := &fnode{name: "MasterFile", pos: b.At, df: true, fid: iso7816.MFID, rules: map[byte]rule{}}
	c.p.mf = mf
	c.attrs(mf, b.Attrs, b.Damaged)
	aids := map[string]*fnode{}
	var walk func(parent *fnode, decls []*FileDecl)
	walk = func(parent *fnode, decls []*FileDecl) {
		fids := map[uint16]*fnode{}
		sfis := map[byte]*fnode{}
		for _, d := range decls {
			n := &fnode{name: d.Name, pos: d.At, df: d.DF, parent: parent, rules: map[byte]rule{}}
			if prev := c.p.byName[d.Name]; prev != nil {
				c.errorf(d.NameAt, "file %s declared twice (first at %v)", d.Name, prev.pos)
			} else {
				c.p.byName[d.Name] = n
			}
			c.attrs(n, d.Attrs, d.Damaged)
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
				walk(n, d.Children)
			}
		}
	}
	walk(mf, b.Files)
}

// attrs applies the attributes of a file declaration; damaged says a
// syntax error cut them short, so missing ones are not reported.
func (c *checker) attrs(n *fnode, attrs []*Attr, damaged bool) {
	seen := map[string]bool{}
	isMF := n.parent == nil
	var typeAt *Attr
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
		if am, ok := efRules[name]; ok && !n.df {
			c.rule(n, a, am)
			continue
		}
		if am, ok := dfRules[name]; ok && n.df {
			if isMF && am == iso7816.AMDelete {
				c.errorf(a.At, "the MF's delete rule comes from MakeCardEraseable() and the so=yes credential, not from an attribute")
				continue
			}
			c.rule(n, a, am)
			continue
		}
		switch {
		case name == "id" && !isMF:
			if v, ok := c.number(a, 1, 0xFFFE); ok {
				switch uint16(v) {
				case iso7816.MFID, 0x3FFF:
					c.errorf(a.Value.Pos(), "FID %04X is reserved (ISO/IEC 7816-4 §7.1.1)", v)
				default:
					n.fid = uint16(v)
				}
			}
		case name == "maxsize" && !isMF:
			n.sizePos = a.Value.Pos()
			if id, ok := a.Value.(*Ident); ok && strings.EqualFold(id.Name, "auto") {
				if n.df {
					c.errorf(id.At, "maxsize=auto is for EFs; give a DF a number or leave it out")
					continue
				}
				n.auto = true
				continue
			}
			if v, ok := c.number(a, 1, 0x7FFF); ok {
				n.maxsize = int(v)
			}
		case name == "aid" && n.df && !isMF:
			b, ok := a.Value.(*BytesLit)
			if !ok || len(b.Value) < 1 || len(b.Value) > 16 {
				c.errorf(a.Value.Pos(), "aid= takes a byte string of 1 to 16 bytes")
				continue
			}
			n.aid = b.Value
		case name == "sfi" && !n.df:
			if v, ok := c.number(a, 1, 30); ok {
				n.sfi = byte(v)
			}
		case name == "type" && !n.df:
			id, ok := a.Value.(*Ident)
			switch {
			case ok && strings.EqualFold(id.Name, "transparent"):
			case ok && strings.EqualFold(id.Name, "linear"):
				n.linear = true
			default:
				c.errorf(a.Value.Pos(), "type= takes transparent or linear")
				seen["maxsize"] = true // no second error about the size
			}
			typeAt = a
		case name == "recordsize" && !n.df:
			if v, ok := c.number(a, 1, 255); ok {
				n.recSize = int(v)
			}
		case name == "records" && !n.df:
			if v, ok := c.number(a, 1, 254); ok {
				n.records = int(v)
			}
		default:
			c.errorf(a.At, "%s has no attribute %s (%s)", n.kind(), a.Name, attrNames(n))
		}
	}
	switch {
	case isMF || damaged:
	case !seen["id"]:
		c.errorf(n.pos, "%s %s needs id=", n.kind(), n.name)
	}
	if n.df || damaged {
		return
	}
	if n.linear {
		if n.recSize == 0 {
			c.errorf(typeAt.At, "a linear EF needs recordsize=")
		}
		if n.maxsize > 0 {
			c.errorf(n.sizePos, "a linear EF is sized with records=, not maxsize=")
		}
		if n.auto {
			n.auto = false
		}
	} else {
		if seen["recordsize"] || seen["records"] {
			c.errorf(n.pos, "recordsize= and records= need type=linear")
		}
		if !seen["maxsize"] && seen["id"] {
			c.errorf(n.pos, "EF %s needs maxsize= (a number or auto)", n.name)
		}
	}
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

// contentDecl checks a File block against its EF.
func (c *checker) contentDecl(name string, b *FileBlock) {
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
func (c *checker) contentUses(blocks map[string]*FileBlock, encrypted bool) {
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
