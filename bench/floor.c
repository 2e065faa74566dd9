/*
 * The floor of scenario A: the least a libfcgi responder can do for a
 * notification.  It reads exactly CONTENT_LENGTH bytes of body, as
 * payhook.fcgi does, and answers a fixed body of the size of WeChat's
 * SUCCESS acknowledgement.  No parsing, no store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#define FLOOR_BODY_MAX 65536

int
main(void)
{
	static const char head[] = "Status: 200 OK\r\n"
	    "Content-Type: text/xml\r\nCache-Control: no-store\r\n"
	    "Content-Length: 96\r\n\r\n";
	static const char body[] = "<xml><return_code><![CDATA[SUCCESS]]>"
	    "</return_code><return_msg><![CDATA[OK]]></return_msg></xml>";
	static char buf[FLOOR_BODY_MAX];
	FCGX_Request r;
	const char *cl;
	long want, got;
	int n;

	if (FCGX_Init() != 0 || FCGX_InitRequest(&r, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&r) >= 0) {
		cl = FCGX_GetParam("CONTENT_LENGTH", r.envp);
		want = cl != NULL ? strtol(cl, NULL, 10) : 0;
		if (want < 0 || want > FLOOR_BODY_MAX)
			want = 0;
		for (got = 0; got < want; got += n)
			if ((n = FCGX_GetStr(buf + got, (int)(want - got),
			    r.in)) <= 0)
				break;
		FCGX_PutStr(head, (int)sizeof(head) - 1, r.out);
		FCGX_PutStr(body, (int)sizeof(body) - 1, r.out);
		FCGX_Finish_r(&r);
	}
	return 0;
}
