/*
 * Flat XML documents (<xml><k>v</k>...</xml>): a reader of that shape and
 * nothing else, and the writer of it.
 *
 * The body of a notification is read before anyone is authenticated, so
 * the reader knows only what a flat document needs: an optional XML
 * declaration, one root element without attributes, child elements
 * holding text and CDATA, the five predefined entities and character
 * references.  There is no DTD, so there are no entities to expand or
 * fetch; whatever else XML allows (comments, processing instructions,
 * nesting, namespaces, attributes, other encodings) is refused.  What it
 * accepts is well-formed XML 1.0 read as any conforming parser reads it;
 * doc/design/security.md §2.1 says how that is checked.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <payhook/sdk.h>

#define PH_XML_NAME_MAX 64

static int
ph_ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* True when p (n bytes) starts with word (lower case), in any case. */
static int
ph_mem_starts_nocase(const unsigned char *p, size_t n, const char *word)
{
	size_t i;

	for (i = 0; word[i] != '\0'; i++)
		if (i == n || ph_ascii_lower(p[i]) != (unsigned char)word[i])
			return 0;
	return 1;
}

/* True when the document holds "<!DOCTYPE" or "<!ENTITY", in any case:
 * one pass over its '<', the next byte telling most of them apart. */
static int
ph_xml_declares(const unsigned char *p, size_t n)
{
	const unsigned char *q, *end = p + n;

	while ((q = memchr(p, '<', (size_t)(end - p))) != NULL) {
		p = q + 1;
		if (p < end && *p == '!' &&
		    (ph_mem_starts_nocase(p + 1, (size_t)(end - p - 1),
		    "doctype") || ph_mem_starts_nocase(p + 1,
		    (size_t)(end - p - 1), "entity")))
			return 1;
	}
	return 0;
}

/* True when needle (lower case) occurs in p, ASCII case-insensitively. */
static int
ph_mem_contains_nocase(const unsigned char *p, size_t n, const char *needle)
{
	size_t m = strlen(needle), i;
	const unsigned char *q;
	int first, plain;

	if (m == 0 || m > n)
		return m == 0;
	/* A needle that starts with a byte that has no case ("<", "]") can
	 * only start where memchr finds that byte: skip to it. */
	first = (unsigned char)needle[0];
	plain = ph_ascii_lower(first) == first && (first < 'a' || first > 'z');
	for (i = 0; i + m <= n; i++) {
		if (plain) {
			if ((q = memchr(p + i, first, n - m + 1 - i)) == NULL)
				return 0;
			i = (size_t)(q - p);
		}
		if (ph_mem_starts_nocase(p + i, n - i, needle))
			return 1;
	}
	return 0;
}

static int
ph_xml_name_char(int c, int first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	    (!first && ((c >= '0' && c <= '9') || c == '-' || c == '.'));
}

/* Field names: ASCII only, so no name can smuggle '=' or '&' into a
 * sign string or depend on Unicode case rules. */
static int
ph_xml_name_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= PH_XML_NAME_MAX ||
		    !ph_xml_name_char((unsigned char)s[i], i == 0))
			return 0;
	return i > 0;
}

/*
 * The length of the character at p (n bytes left) when it is strict
 * UTF-8 of a character XML 1.0 allows (no C0 control but tab, LF and CR,
 * no surrogate, U+FFFE or U+FFFF), else 0.
 */
static size_t
ph_xml_char_len(const unsigned char *p, size_t n)
{
	unsigned long cp;
	size_t k, need;

	if (n == 0)
		return 0;
	if (p[0] < 0x80)
		return p[0] >= 0x20 || p[0] == '\t' || p[0] == '\n' ||
		    p[0] == '\r' ? 1 : 0;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		need = 1;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		need = 2;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		need = 3;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (n - 1 < need)
		return 0;
	for (k = 1; k <= need; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[k] & 0x3f);
	}
	if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
	    cp == 0xfffe || cp == 0xffff)
		return 0;
	return need + 1;
}

/* Strict UTF-8 of characters XML 1.0 allows. */
static int
ph_xml_chars_ok(const unsigned char *s, size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i += k)
		if ((k = ph_xml_char_len(s + i, n - i)) == 0)
			return 0;
	return 1;
}

/* ---- Reading ------------------------------------------------------------ */

struct ph_xml_in {
	const unsigned char *start, *p, *end;
	const struct ph_xml_limits *lim;
	struct ph_diag *diag;
};

static int
ph_xml_bad(struct ph_xml_in *in, const char *what)
{
	return ph_fail(in->diag, PH_E_MALFORMED, "not a flat XML document: "
	    "%s at byte %zu", what, (size_t)(in->p - in->start));
}

static int
ph_xml_at_n(const struct ph_xml_in *in, const char *s, size_t n)
{
	return (size_t)(in->end - in->p) >= n && memcmp(in->p, s, n) == 0;
}

static int
ph_xml_at(const struct ph_xml_in *in, const char *s)
{
	return ph_xml_at_n(in, s, strlen(s));
}

/* The same for a string literal, its length known when compiled (the
 * reader asks a dozen times a field). */
#define PH_XML_AT(in, lit)	ph_xml_at_n((in), (lit), sizeof(lit) - 1)

static int
ph_xml_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skips white space; returns how much there was. */
static size_t
ph_xml_skip_space(struct ph_xml_in *in)
{
	const unsigned char *from = in->p;

	while (in->p < in->end && ph_xml_space(*in->p))
		in->p++;
	return (size_t)(in->p - from);
}

/*
 * Reads a name into name (PH_XML_NAME_MAX + 1 bytes).  A name must end
 * where a tag can go on (space, '>', '/', '='): a name going on in bytes
 * XML allows but this reader does not (':', non-ASCII) is refused here.
 */
static int
ph_xml_name(struct ph_xml_in *in, char *name)
{
	const unsigned char *from = in->p;
	size_t n;

	if (in->p < in->end && ph_xml_name_char(*in->p, 1))
		for (in->p++; in->p < in->end &&
		    ph_xml_name_char(*in->p, 0); in->p++)
			if (in->p - from == PH_XML_NAME_MAX)
				return ph_xml_bad(in, "name longer than 64 "
				    "bytes");
	n = (size_t)(in->p - from);
	memcpy(name, from, n);
	name[n] = '\0';
	if (n == 0 || in->p == in->end || !(ph_xml_space(*in->p) ||
	    *in->p == '>' || *in->p == '/' || *in->p == '='))
		return ph_xml_bad(in, "a name not of ASCII letters, digits, "
		    "'_', '-' and '.'");
	return PH_OK;
}

/* One pseudo-attribute of the declaration: S name Eq quoted-value. */
static int
ph_xml_decl_attr(struct ph_xml_in *in, char *name, const char **val,
    size_t *len)
{
	const unsigned char *q;
	unsigned char quote;

	/* XML 1.0 asks for the space; libxml2 lets it pass with a warning */
	if (ph_xml_skip_space(in) == 0)
		return ph_xml_bad(in, "XML declaration without space before a "
		    "pseudo-attribute");
	if (ph_xml_name(in, name) != PH_OK)
		return ph_xml_bad(in, "malformed XML declaration");
	ph_xml_skip_space(in);
	if (in->p == in->end || *in->p++ != '=')
		return ph_xml_bad(in, "malformed XML declaration");
	ph_xml_skip_space(in);
	if (in->p == in->end || (*in->p != '"' && *in->p != '\''))
		return ph_xml_bad(in, "malformed XML declaration");
	quote = *in->p++;
	if ((q = memchr(in->p, quote, (size_t)(in->end - in->p))) == NULL)
		return ph_xml_bad(in, "malformed XML declaration");
	*val = (const char *)in->p;
	*len = (size_t)(q - in->p);
	in->p = q + 1;
	return PH_OK;
}

/*
 * The XML declaration, at the very start or not at all: version 1.0,
 * then optionally an encoding, which must be UTF-8 (a document in another
 * encoding would need transcoding), then optionally standalone.
 */
static int
ph_xml_decl(struct ph_xml_in *in)
{
	char name[PH_XML_NAME_MAX + 1];
	const char *val = NULL;
	size_t len = 0;
	int step = 0;

	if (!PH_XML_AT(in, "<?xml") || in->end - in->p < 6 ||
	    !ph_xml_space(in->p[5]))
		return PH_OK;
	in->p += 5;
	for (;;) {
		const unsigned char *mark = in->p;

		ph_xml_skip_space(in);
		if (PH_XML_AT(in, "?>"))
			break;
		in->p = mark;
		if (ph_xml_decl_attr(in, name, &val, &len) != PH_OK)
			return PH_E_MALFORMED;
		if (step == 0 && strcmp(name, "version") == 0) {
			if (len != 3 || memcmp(val, "1.0", 3) != 0)
				return ph_xml_bad(in, "XML version is not 1.0");
			step = 1;
		} else if (step == 1 && strcmp(name, "encoding") == 0) {
			if (len != 5 || strncasecmp(val, "UTF-8", 5) != 0)
				return ph_fail(in->diag, PH_E_MALFORMED,
				    "encoding is not UTF-8");
			step = 2;
		} else if (step >= 1 && step <= 2 &&
		    strcmp(name, "standalone") == 0) {
			if ((len != 3 || memcmp(val, "yes", 3) != 0) &&
			    (len != 2 || memcmp(val, "no", 2) != 0))
				return ph_xml_bad(in, "malformed XML "
				    "declaration");
			step = 3;
		} else
			return ph_xml_bad(in, "malformed XML declaration");
	}
	if (step == 0)
		return ph_xml_bad(in, "XML declaration without a version");
	in->p += 2;
	return PH_OK;
}

static int
ph_xml_put(struct ph_xml_in *in, struct ph_buf *val, const char *field,
    const void *p, size_t n)
{
	if (ph_buf_append(val, p, n) == PH_OK)
		return PH_OK;
	if (val->err == PH_E_TOOBIG)
		return ph_fail(in->diag, PH_E_TOOBIG, "field %.64s: value "
		    "longer than %zu bytes", field, in->lim->max_value);
	return ph_fail(in->diag, val->err, "out of memory");
}

/*
 * Appends n bytes of character data at p: every character checked, and
 * line ends normalised as XML 1.0 §2.11 has it (CR LF and a lone CR are
 * read as LF).
 */
static int
ph_xml_chardata(struct ph_xml_in *in, struct ph_buf *val, const char *field,
    const unsigned char *p, size_t n)
{
	const unsigned char *run = p, *end = p + n;
	size_t k;
	int rc;

	while (p < end) {
		if (*p >= 0x20 && *p < 0x80) {
			p++;
			continue;
		}
		if (*p == '\r') {
			if ((rc = ph_xml_put(in, val, field, run,
			    (size_t)(p - run))) != PH_OK ||
			    (rc = ph_xml_put(in, val, field, "\n", 1)) != PH_OK)
				return rc;
			p += p + 1 < end && p[1] == '\n' ? 2 : 1;
			run = p;
			continue;
		}
		if ((k = ph_xml_char_len(p, (size_t)(end - p))) == 0) {
			in->p = p;
			return ph_xml_bad(in, "a byte that is not a UTF-8 XML "
			    "character");
		}
		p += k;
	}
	return ph_xml_put(in, val, field, run, (size_t)(p - run));
}

/* A reference after '&': one of the five predefined entities, or a
 * character reference to a character XML allows. */
static int
ph_xml_ref(struct ph_xml_in *in, struct ph_buf *val, const char *field)
{
	static const struct {
		const char *name;
		char c;
	} predef[] = {
		{ "lt;", '<' }, { "gt;", '>' }, { "amp;", '&' },
		{ "quot;", '"' }, { "apos;", '\'' },
	};
	unsigned char utf8[4];
	unsigned long cp = 0;
	size_t i, n = 0;
	int hex;

	in->p++;
	for (i = 0; i < sizeof(predef) / sizeof(predef[0]); i++)
		if (ph_xml_at(in, predef[i].name)) {
			in->p += strlen(predef[i].name);
			return ph_xml_put(in, val, field, &predef[i].c, 1);
		}
	if (!PH_XML_AT(in, "#"))
		return ph_xml_bad(in, "an entity that is not declared");
	in->p++;
	hex = PH_XML_AT(in, "x");
	in->p += hex;
	for (; in->p < in->end && *in->p != ';'; in->p++, n++) {
		int c = *in->p, d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (hex && ph_ascii_lower(c) >= 'a' &&
		    ph_ascii_lower(c) <= 'f')
			d = ph_ascii_lower(c) - 'a' + 10;
		else
			return ph_xml_bad(in, "malformed character reference");
		cp = cp * (hex ? 16 : 10) + (unsigned long)d;
		if (cp > 0x10ffff)
			return ph_xml_bad(in, "character reference out of "
			    "range");
	}
	if (n == 0 || in->p == in->end)
		return ph_xml_bad(in, "malformed character reference");
	in->p++;
	if (cp < 0x80) {
		utf8[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		utf8[0] = (unsigned char)(0xc0 | cp >> 6);
		utf8[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		utf8[0] = (unsigned char)(0xe0 | cp >> 12);
		utf8[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		utf8[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		utf8[0] = (unsigned char)(0xf0 | cp >> 18);
		utf8[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		utf8[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		utf8[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	if (ph_xml_char_len(utf8, n) != n)
		return ph_xml_bad(in, "character reference to a character "
		    "XML does not allow");
	return ph_xml_put(in, val, field, utf8, n);
}

/* After "<![CDATA[": everything up to "]]>" as it stands. */
static int
ph_xml_cdata(struct ph_xml_in *in, struct ph_buf *val, const char *field)
{
	const unsigned char *q;
	size_t left;
	int rc;

	in->p += 9;
	for (q = in->p; ; q++) {
		left = (size_t)(in->end - q);
		if ((q = memchr(q, ']', left)) == NULL)
			return ph_xml_bad(in, "CDATA section not closed");
		if (in->end - q >= 3 && q[1] == ']' && q[2] == '>')
			break;
	}
	if ((rc = ph_xml_chardata(in, val, field, in->p,
	    (size_t)(q - in->p))) != PH_OK)
		return rc;
	in->p = q + 3;
	return PH_OK;
}

/* After "</": the name, which must be name, white space and '>'. */
static int
ph_xml_end_tag(struct ph_xml_in *in, const char *name)
{
	char got[PH_XML_NAME_MAX + 1];
	size_t len = strlen(name);
	int rc;

	/* "</name>", as nearly every end tag is: no name to read */
	if ((size_t)(in->end - in->p) >= len + 3 &&
	    memcmp(in->p + 2, name, len) == 0 && in->p[len + 2] == '>') {
		in->p += len + 3;
		return PH_OK;
	}
	in->p += 2;
	if ((rc = ph_xml_name(in, got)) != PH_OK)
		return rc;
	ph_xml_skip_space(in);
	if (strcmp(got, name) != 0 || in->p == in->end || *in->p != '>')
		return ph_xml_bad(in, "end tag does not match its start tag");
	in->p++;
	return PH_OK;
}

/* The value of field, up to its end tag: text, references and CDATA. */
static int
ph_xml_content(struct ph_xml_in *in, struct ph_buf *val, const char *field)
{
	const unsigned char *q;
	int rc;

	for (;;) {
		for (q = in->p; q < in->end && *q != '<' && *q != '&'; q++)
			if (*q == ']' && in->end - q >= 3 && q[1] == ']' &&
			    q[2] == '>') {
				in->p = q;
				return ph_xml_bad(in, "\"]]>\" in text");
			}
		if ((rc = ph_xml_chardata(in, val, field, in->p,
		    (size_t)(q - in->p))) != PH_OK)
			return rc;
		in->p = q;
		if (in->p == in->end)
			return ph_xml_bad(in, "document ends inside a field");
		if (*in->p == '&') {
			if ((rc = ph_xml_ref(in, val, field)) != PH_OK)
				return rc;
		} else if (PH_XML_AT(in, "<![CDATA[")) {
			if ((rc = ph_xml_cdata(in, val, field)) != PH_OK)
				return rc;
		} else if (PH_XML_AT(in, "</"))
			break;
		else
			return ph_fail(in->diag, PH_E_MALFORMED, "field %.64s: "
			    "holds markup other than text and CDATA (nested "
			    "element, comment or processing instruction)",
			    field);
	}
	return ph_xml_end_tag(in, field);
}

/*
 * A start tag after '<': its name, no attributes, then '>' (*empty 0) or
 * "/>" (*empty 1).
 */
static int
ph_xml_start_tag(struct ph_xml_in *in, char *name, int *empty)
{
	int rc;

	in->p++;
	if ((rc = ph_xml_name(in, name)) != PH_OK)
		return rc;
	ph_xml_skip_space(in);
	*empty = PH_XML_AT(in, "/>");
	if (*empty) {
		in->p += 2;
		return PH_OK;
	}
	if (in->p < in->end && *in->p == '>') {
		in->p++;
		return PH_OK;
	}
	return ph_fail(in->diag, PH_E_MALFORMED, "element %.64s has "
	    "attributes or namespaces", name);
}

/*
 * The text between the root's children, which must be white space: as it
 * stands, or written as character references (&#10;), as XML allows.
 */
static int
ph_xml_between(struct ph_xml_in *in)
{
	struct ph_buf ws;
	size_t i;
	int rc = PH_OK;

	ph_buf_init(&ws, 8);
	while (ph_xml_skip_space(in) > 0 || PH_XML_AT(in, "&")) {
		if (!PH_XML_AT(in, "&"))
			continue;
		ws.len = 0;
		if ((rc = ph_xml_ref(in, &ws, "")) != PH_OK)
			break;
		for (i = 0; i < ws.len; i++)
			if (!ph_xml_space((unsigned char)ws.data[i]))
				rc = ph_fail(in->diag, PH_E_MALFORMED,
				    "unexpected content in the root element");
		if (rc != PH_OK)
			break;
	}
	ph_buf_free(&ws);
	return rc;
}

/* The root's children: white space between them and nothing else. */
static int
ph_xml_fields(struct ph_xml_in *in, const char *root, struct ph_kvlist *out)
{
	char name[PH_XML_NAME_MAX + 1];
	struct ph_buf val;
	int empty, rc = PH_OK;

	ph_buf_init(&val, in->lim->max_value);
	for (;;) {
		if ((rc = ph_xml_between(in)) != PH_OK)
			break;
		if (in->p == in->end) {
			rc = ph_xml_bad(in, "root element not closed");
			break;
		}
		if (PH_XML_AT(in, "</"))
			break;
		if (*in->p != '<' || PH_XML_AT(in, "<!") ||
		    PH_XML_AT(in, "<?")) {
			rc = ph_fail(in->diag, PH_E_MALFORMED, "unexpected "
			    "content in the root element at byte %zu",
			    (size_t)(in->p - in->start));
			break;
		}
		if ((rc = ph_xml_start_tag(in, name, &empty)) != PH_OK)
			break;
		if (out->n >= in->lim->max_fields) {
			rc = ph_fail(in->diag, PH_E_TOOBIG, "more than %zu "
			    "fields", in->lim->max_fields);
			break;
		}
		val.len = 0;
		/* An empty element still has a string value. */
		if ((rc = ph_xml_put(in, &val, name, "", 0)) != PH_OK ||
		    (!empty && (rc = ph_xml_content(in, &val, name)) !=
		    PH_OK) ||
		    (rc = ph_kvlist_add(out, name, strlen(name), val.data,
		    val.len, in->diag)) != PH_OK)
			break;
	}
	ph_buf_free(&val);
	return rc != PH_OK ? rc : ph_xml_end_tag(in, root);
}

static int
ph_xml_document(struct ph_xml_in *in, const char *root_name,
    struct ph_kvlist *out)
{
	char root[PH_XML_NAME_MAX + 1];
	int empty, rc;

	if ((rc = ph_xml_decl(in)) != PH_OK)
		return rc;
	ph_xml_skip_space(in);
	if (in->p == in->end || *in->p != '<' || PH_XML_AT(in, "<!") ||
	    PH_XML_AT(in, "<?"))
		return ph_fail(in->diag, PH_E_MALFORMED, "content outside the "
		    "root element");
	if ((rc = ph_xml_start_tag(in, root, &empty)) != PH_OK)
		return rc;
	if (root_name != NULL && strcmp(root, root_name) != 0)
		return ph_fail(in->diag, PH_E_MALFORMED, "root element is "
		    "<%.64s>, expected <%s>", root, root_name);
	if (!empty && (rc = ph_xml_fields(in, root, out)) != PH_OK)
		return rc;
	ph_xml_skip_space(in);
	if (in->p != in->end)
		return ph_fail(in->diag, PH_E_MALFORMED, "content outside the "
		    "root element");
	return PH_OK;
}

/*
 * out is initialised here (bounded by lim->max_fields); on failure it is
 * left empty, on success the caller frees it with ph_kvlist_free().
 */
int
ph_xml_parse_flat(const unsigned char *doc, size_t len,
    const char *root_name, const struct ph_xml_limits *lim,
    struct ph_kvlist *out, struct ph_diag *diag)
{
	struct ph_xml_in in;
	int rc;

	if (out == NULL || lim == NULL)
		return ph_fail(diag, PH_E_INTERNAL, "xml: NULL argument");
	ph_kvlist_init(out, lim->max_fields);
	if (doc == NULL || len == 0)
		return ph_fail(diag, PH_E_MALFORMED, "empty document");
	if (len > lim->max_bytes || len > INT_MAX)
		return ph_fail(diag, PH_E_TOOBIG,
		    "document larger than %zu bytes", lim->max_bytes);
	/*
	 * Byte-level checks first.  A UTF-8 document holds no NUL, which
	 * also keeps out UTF-16/32; it must start with markup (no BOM);
	 * and nothing a flat document needs is declared with <!DOCTYPE or
	 * <!ENTITY: a document naming either, even inside a value, is not
	 * one this reader would have to take.
	 */
	if (memchr(doc, '\0', len) != NULL)
		return ph_fail(diag, PH_E_MALFORMED, "NUL byte in document");
	in.start = in.p = doc;
	in.end = doc + len;
	in.lim = lim;
	in.diag = diag;
	ph_xml_skip_space(&in);
	if (in.p == in.end || *in.p != '<')
		return ph_fail(diag, PH_E_MALFORMED, "not an XML document");
	if (ph_xml_declares(doc, len))
		return ph_fail(diag, PH_E_MALFORMED,
		    "DOCTYPE or ENTITY declarations are refused");
	in.p = in.start;
	if ((rc = ph_xml_document(&in, root_name, out)) != PH_OK)
		ph_kvlist_free(out);
	return rc;
}

/* ---- Writing ------------------------------------------------------------ */

int
ph_xml_write_flat(const char *root_name, const struct ph_kvlist *l,
    struct ph_buf *out)
{
	size_t i;

	if (root_name == NULL || !ph_xml_name_ok(root_name))
		return PH_E_INTERNAL;
	for (i = 0; i < l->n; i++) {
		const struct ph_kv *kv = &l->items[i];

		if (!ph_xml_name_ok(kv->key))
			return PH_E_FIELD;
		/* CDATA cannot carry "]]>", nor a CR: a reader takes CR
		 * for LF (line ends are normalised before anything). */
		if (!ph_xml_chars_ok((const unsigned char *)kv->val,
		    kv->val_len) || memchr(kv->val, '\r', kv->val_len) !=
		    NULL || (kv->val_len >= 3 &&
		    ph_mem_contains_nocase((const unsigned char *)kv->val,
		    kv->val_len, "]]>")))
			return PH_E_FIELD;
	}
	ph_buf_printf(out, "<%s>", root_name);
	for (i = 0; i < l->n; i++) {
		const struct ph_kv *kv = &l->items[i];

		ph_buf_printf(out, "<%s><![CDATA[", kv->key);
		ph_buf_append(out, kv->val, kv->val_len);
		ph_buf_printf(out, "]]></%s>", kv->key);
	}
	ph_buf_printf(out, "</%s>", root_name);
	return out->err;
}
