/**
 * Mixpanel's four ingestion endpoints. Each has its own queue, and one request only ever carries
 * messages for one endpoint. A module of its own so that the spool can name it without importing
 * the sink's options (which import the spool's).
 */
export type MixpanelEndpoint = 'import' | 'track' | 'engage' | 'groups';
