package cli

import (
	"flag"
	"io"
	"strings"
)

// flagDoc is one flag as the help, the man page and the completions
// describe it.
type flagDoc struct {
	Name  string // without dashes
	Value string // the placeholder of its value, uppercase; empty for a boolean
	Usage string
	Def   string // the default, empty when it is the zero value
}

// Spelling is the flag as typed: --name, or -n for a one-letter name.
func (f flagDoc) Spelling() string {
	if len(f.Name) == 1 {
		return "-" + f.Name
	}
	return "--" + f.Name
}

// flagDocs lists the flags of fs in name order.
func flagDocs(fs *flag.FlagSet) []flagDoc {
	var docs []flagDoc
	if fs == nil {
		return nil
	}
	fs.VisitAll(func(f *flag.Flag) {
		value, usage := flag.UnquoteUsage(f)
		d := flagDoc{Name: f.Name, Usage: usage}
		if !isBool(f) {
			d.Value = strings.ToUpper(value)
		}
		switch f.DefValue {
		case "", "0", "false", "0s", "[]":
		default:
			d.Def = f.DefValue
		}
		docs = append(docs, d)
	})
	return docs
}

// isBool reports whether f is a boolean flag, which takes no value.
func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// usageLine is "usage: PROG CMD ARGS".
func usageLine(path []*Command) string {
	c := path[len(path)-1]
	line := pathName(path)
	switch {
	case c.Args != "":
		line += " " + c.Args
	case len(c.Subs) > 0 && len(path) == 1:
		line += " COMMAND [flags] [args]"
	case len(c.Subs) > 0:
		line += " COMMAND"
	}
	return line
}

// writeHelp writes the help of the last command of path.
func writeHelp(w io.Writer, path []*Command) {
	c := path[len(path)-1]
	var b strings.Builder
	b.WriteString("usage: " + usageLine(path) + "\n")
	if c.About != "" {
		b.WriteString("\n" + strings.TrimRight(c.About, "\n") + "\n")
	} else if c.Summary != "" {
		b.WriteString("\n" + c.Summary + "\n")
	}
	if len(c.Subs) > 0 {
		b.WriteString("\ncommands:\n")
		subs := sorted(c.Subs)
		if len(path) == 1 {
			subs = append(subs, helpDoc)
			subs = sorted(subs)
		}
		width := 0
		for _, s := range subs {
			width = max(width, len(s.Name))
		}
		for _, s := range subs {
			b.WriteString("  " + s.Name + strings.Repeat(" ", width-len(s.Name)+2) + s.Summary + "\n")
		}
	}
	docs := flagDocs(c.Flags)
	if len(path) == 1 {
		docs = rootFlags
	}
	if len(docs) > 0 {
		b.WriteString("\nflags:\n")
		for _, d := range docs {
			b.WriteString("  " + d.Spelling())
			if d.Value != "" {
				b.WriteString(" " + d.Value)
			}
			b.WriteString("\n        " + d.Usage)
			if d.Def != "" {
				b.WriteString(" (default " + d.Def + ")")
			}
			b.WriteString("\n")
		}
	}
	switch {
	case len(path) == 1:
		b.WriteString("\nrun '" + path[0].Name + " help COMMAND' for the help of a command.\n")
	case len(c.Subs) > 0:
		b.WriteString("\nrun '" + helpCommand(path) + " COMMAND' for the help of a command.\n")
	}
	io.WriteString(w, b.String())
}

// helpDoc lists the built-in help command beside the root's commands.
var helpDoc = &Command{Name: "help", Args: "[COMMAND...]", Summary: "show the help of a command",
	About: "Print the help of COMMAND (a command and its subcommands, such as \"config check\") on standard\noutput, as COMMAND --help does; without COMMAND, the list of commands."}

// rootFlags are the flags the root understands.
var rootFlags = []flagDoc{
	{Name: "help", Usage: "show this help (also -h)"},
	{Name: "version", Usage: "print the version (also -V)"},
}
