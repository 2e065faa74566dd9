/*
 * The reference the flat XML reader is checked against: the same flat
 * shape read with libxml2 (entities, DTDs and the network off), as
 * payhook read it before it had a reader of its own.  Test code only:
 * fuzz_xml runs through both every input that passes the reader's checks
 * on bytes (size, NUL, the first '<', no DOCTYPE or ENTITY), and stops at
 * a difference.  Field names are libxml2's (the reader's are ASCII).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include <payhook/sdk.h>

#include "xml_oracle.h"

static int
ph_blank(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
			return 0;
	return 1;
}

static void
ph_xml_silent(void *ctx, const char *msg, ...)
{
}

#if LIBXML_VERSION >= 21200
static void
ph_xml_silent_structured(void *ctx, const xmlError *err)
#else
static void
ph_xml_silent_structured(void *ctx, xmlErrorPtr err)
#endif
{
}

/* Reads the text of one field: text and CDATA children only. */
static int
ph_xml_field(xmlNodePtr el, const struct ph_xml_limits *lim,
    struct ph_buf *val, struct ph_diag *diag)
{
	const char *name = (const char *)el->name;
	xmlNodePtr c;

	if (el->ns != NULL || el->nsDef != NULL || el->properties != NULL)
		return ph_fail(diag, PH_E_MALFORMED,
		    "field %.64s: attributes or namespaces", name);
	for (c = el->children; c != NULL; c = c->next) {
		switch (c->type) {
		case XML_TEXT_NODE:
		case XML_CDATA_SECTION_NODE:
			if (c->content == NULL ||
			    ph_buf_puts(val, (const char *)c->content) ==
			    PH_OK)
				break;
			if (val->err == PH_E_TOOBIG)
				return ph_fail(diag, PH_E_TOOBIG,
				    "field %.64s: value longer than %zu bytes",
				    name, lim->max_value);
			return ph_fail(diag, val->err, "out of memory");
		case XML_ELEMENT_NODE:
			return ph_fail(diag, PH_E_MALFORMED,
			    "field %.64s: nested element", name);
		default:
			return ph_fail(diag, PH_E_MALFORMED,
			    "field %.64s: unexpected node", name);
		}
	}
	/* An empty element still needs a string value. */
	if (ph_buf_append(val, "", 0) != PH_OK)
		return ph_fail(diag, val->err, "out of memory");
	return PH_OK;
}

static int
ph_xml_walk(xmlDocPtr xdoc, const char *root_name,
    const struct ph_xml_limits *lim, struct ph_kvlist *out,
    struct ph_diag *diag)
{
	xmlNodePtr root = NULL, c;
	struct ph_buf val;
	int rc;

	if (xdoc->intSubset != NULL || xdoc->extSubset != NULL)
		return ph_fail(diag, PH_E_MALFORMED, "DTD present");
	/* A prolog may name an encoding, which libxml2 would transcode. */
	if (xdoc->encoding != NULL &&
	    strcasecmp((const char *)xdoc->encoding, "UTF-8") != 0)
		return ph_fail(diag, PH_E_MALFORMED, "encoding is not UTF-8");
	for (c = xdoc->children; c != NULL; c = c->next) {
		if (c->type != XML_ELEMENT_NODE || root != NULL)
			return ph_fail(diag, PH_E_MALFORMED,
			    "content outside the root element");
		root = c;
	}
	if (root == NULL)
		return ph_fail(diag, PH_E_MALFORMED, "no root element");
	if (root_name != NULL &&
	    strcmp((const char *)root->name, root_name) != 0)
		return ph_fail(diag, PH_E_MALFORMED,
		    "root element is <%.64s>, expected <%s>",
		    (const char *)root->name, root_name);
	if (root->ns != NULL || root->nsDef != NULL ||
	    root->properties != NULL)
		return ph_fail(diag, PH_E_MALFORMED,
		    "root element has attributes or namespaces");

	for (c = root->children; c != NULL; c = c->next) {
		const char *name = (const char *)c->name;

		if (c->type == XML_TEXT_NODE &&
		    ph_blank((const char *)c->content))
			continue;
		if (c->type != XML_ELEMENT_NODE)
			return ph_fail(diag, PH_E_MALFORMED,
			    "unexpected content in the root element");
		if (out->n >= lim->max_fields)
			return ph_fail(diag, PH_E_TOOBIG,
			    "more than %zu fields", lim->max_fields);
		ph_buf_init(&val, lim->max_value);
		rc = ph_xml_field(c, lim, &val, diag);
		if (rc == PH_OK)
			rc = ph_kvlist_add(out, name, strlen(name), val.data,
			    val.len, diag);
		ph_buf_free(&val);
		if (rc != PH_OK)
			return rc;
	}
	return PH_OK;
}

int
xml_oracle_parse(const unsigned char *doc, size_t len,
    const char *root_name, const struct ph_xml_limits *lim,
    struct ph_kvlist *out, struct ph_diag *diag)
{
	xmlGenericErrorFunc old_gen;
	xmlStructuredErrorFunc old_st;
	void *old_gen_ctx, *old_st_ctx;
	xmlDocPtr xdoc;
	int rc;

	ph_kvlist_init(out, lim->max_fields);
	if (len > INT_MAX)
		return ph_fail(diag, PH_E_TOOBIG, "document too large");
	xmlInitParser();
	/*
	 * libxml2 reports some errors through per-thread handlers whatever
	 * the options say; silence them for this call only and put back
	 * whatever the caller had.
	 */
	old_gen = xmlGenericError;
	old_gen_ctx = xmlGenericErrorContext;
	old_st = xmlStructuredError;
	old_st_ctx = xmlStructuredErrorContext;
	xmlSetGenericErrorFunc(NULL, ph_xml_silent);
	xmlSetStructuredErrorFunc(NULL, ph_xml_silent_structured);
	xdoc = xmlReadMemory((const char *)doc, (int)len, NULL, NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlSetGenericErrorFunc(old_gen_ctx, old_gen);
	xmlSetStructuredErrorFunc(old_st_ctx, old_st);
	xmlResetLastError();

	if (xdoc == NULL)
		return ph_fail(diag, PH_E_MALFORMED, "not well-formed XML");
	rc = ph_xml_walk(xdoc, root_name, lim, out, diag);
	xmlFreeDoc(xdoc);
	if (rc != PH_OK)
		ph_kvlist_free(out);
	return rc;
}
