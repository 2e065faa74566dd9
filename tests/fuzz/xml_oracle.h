/* The libxml2 reference for ph_xml_parse_flat(): see xml_oracle.c. */
#ifndef PH_XML_ORACLE_H
#define PH_XML_ORACLE_H

#include <stddef.h>

#include <payhook/sdk.h>

/* As ph_xml_parse_flat(), read with libxml2. */
int xml_oracle_parse(const unsigned char *doc, size_t len,
    const char *root_name, const struct ph_xml_limits *lim,
    struct ph_kvlist *out, struct ph_diag *diag);

#endif
