/* A shared object that is not a payhook provider: no entry symbol. */
int not_a_provider(void);

int
not_a_provider(void)
{
	return 42;
}
