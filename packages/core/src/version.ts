/** Sent as `$lib_version`; a test keeps it equal to package.json's version. */
export const LIB_VERSION = '0.1.0';
/** Sent as `mp_lib`. */
export const LIB_NAME = 'idstitch';
