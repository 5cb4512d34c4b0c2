// The Flex Consumption (FC1) plan and the function app (Linux, Python 3.11).
//
// The app runs as the user-assigned managed identity and holds no secret of its own:
//   - storage: identity-based AzureWebJobsStorage__* settings (no connection string);
//     the app's own table and queue clients read the same settings;
//   - the deployment package: read from a blob container with the same identity;
//   - OutlookApiClientSecret: a Key Vault reference resolved with that identity
//     (keyVaultReferenceIdentity);
//   - the token-encryption data keys: only wrapped (TokenEncryptionKeyWrapped), unwrapped
//     by the app with Key Vault's unwrapKey on TokenEncryptionKeyVaultKey (envelope
//     encryption, core/keyvault.bicep);
//   - telemetry: Entra-authenticated (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
//
// No App Service Authentication (EasyAuth): Flex Consumption does not support it, and
// the design needs none. /oauth2/outlook/callback is anonymous because Entra ID
// redirects the user's browser there (the single-use, user-bound OAuth state and PKCE
// protect it); connect and disconnect are called by the Communifire backend with a
// function key; the queue triggers are not reachable over HTTP at all.
//
// Flex Consumption sets the language and version in functionAppConfig.runtime and
// rejects or ignores the classic settings (FUNCTIONS_WORKER_RUNTIME,
// FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENT*,
// linuxFxVersion, ftpsState, ...), so none of them appear here.
//
// The app settings are part of the site: a setting changed by hand in the portal is
// overwritten by the next deployment. Change the parameter instead.

param planName string
param functionAppName string
param location string
param tags object = {}

@description('Name of the user-assigned identity the app runs as.')
param identityName string

param storageAccountName string
param deploymentContainerName string
param appInsightsName string

@description('Versionless Key Vault URI of the OutlookApiClientSecret secret.')
param outlookApiClientSecretUri string

@description('Versionless Key Vault URI of the legacy TokenEncryptionKey secret.')
param tokenEncryptionKeyUri string

@description('true: the legacy TokenEncryptionKey secret is still referenced (while a deployment made before envelope encryption re-seals its token caches).')
param legacyTokenEncryptionKey bool = false

@description('Versionless URI of the key-encryption key in Key Vault.')
param keyEncryptionKeyUri string

@description('TokenEncryptionKeyWrapped: kid:keyVersion:base64url(wrapped key)[,...] (outlook-sync keygen --wrap-with). Not a secret: only Key Vault can unwrap it.')
param tokenEncryptionKeyWrapped string

// Network (main.bicep passes them from vnetEnabled); the defaults are the VNet setup that
// infra/check.sh scans: no public endpoint, outbound through the app subnet.
@allowed([
  'Enabled'
  'Disabled'
])
@description('Disabled: the app is reached only through its private endpoint.')
param publicNetworkAccess string = 'Disabled'

@description('Subnet delegated to Microsoft.App/environments for VNet integration; empty: none.')
param appSubnetId string = ''

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// SPEC section 2 settings (see main.bicep for what each means).
param outlookApiClientId string
param samlTenantId string
param useSamlTenantIdForOutlook bool
param outlookAllowedTenantIds string
param requireMatchingOutlookAccount bool
param enableCalendarSync bool
param siteUrl string
param syncSchedule string
param syncIntervalMinutes int
param maxDeleteShare string
param graphApiBaseUrl string
param authorityHost string
param tlsCaBundle string
param enableNotifications bool
param notificationUrl string
param subscriptionMaxMinutes int
param subscribedSyncIntervalMinutes int

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// SiteUrl: the given base URL without a trailing slash, else the app's own host name.
// (The default host name of an app is <name>.azurewebsites.net in Azure public cloud;
// in a national cloud, pass siteUrl.)
var trimmedSiteUrl = endsWith(siteUrl, '/') ? substring(siteUrl, 0, length(siteUrl) - 1) : siteUrl
var effectiveSiteUrl = empty(trimmedSiteUrl) ? 'https://${functionAppName}.azurewebsites.net' : trimmedSiteUrl

// NotificationUrl: where Graph posts change notifications; the app's own https host name
// unless one is given; empty when notifications are turned off (timer polling only).
var trimmedNotificationUrl = endsWith(notificationUrl, '/') ? substring(notificationUrl, 0, length(notificationUrl) - 1) : notificationUrl
var effectiveNotificationUrl = !enableNotifications ? '' : (empty(trimmedNotificationUrl) ? 'https://${functionAppName}.azurewebsites.net' : trimmedNotificationUrl)

// TlsCaBundle is optional: only written when a path is given.
var optionalSettings = concat(empty(tlsCaBundle) ? [] : [
  {
    name: 'TlsCaBundle'
    value: tlsCaBundle
  }
], legacyTokenEncryptionKey ? [
  {
    name: 'TokenEncryptionKey'
    value: '@Microsoft.KeyVault(SecretUri=${tokenEncryptionKeyUri})'
  }
] : [])

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Zone redundancy for Flex Consumption is offered only in some regions and would make the template fail elsewhere. The app is a background sync (timer + queues) that catches up on its next run after an outage; set properties.zoneRedundant where the region supports it.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: Client certificates cannot be used: the OAuth callback is opened by every user's browser, which has no client certificate.
  // checkov:skip=CKV_AZURE_212: Flex Consumption has no worker count (siteConfig.numberOfWorkers); it scales each function from zero on demand. Keeping instances warm (always-ready) costs money and buys nothing for a background sync that is not latency-sensitive.
  // checkov:skip=CKV_AZURE_213: No App Service health check: a scale-to-zero Flex Consumption app with no always-ready instance has no pool of instances to probe, and the app has no HTTP health endpoint. Failures show in Application Insights and in outlook-sync doctor (docs/operations.md).
  // checkov:skip=CKV_AZURE_78: Flex Consumption has no FTP endpoint and rejects siteConfig.ftpsState (ARM error 51021), so the setting cannot be written; code is deployed only as a package in the blob container.
  name: functionAppName
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    // vnetEnabled (default): no public endpoint; the intranet proxy reaches the private
    // endpoint of the app, and outbound traffic goes through the VNet (see main.bicep).
    publicNetworkAccess: publicNetworkAccess
    virtualNetworkSubnetId: empty(appSubnetId) ? null : appSubnetId
    // Key Vault references are resolved with the user-assigned identity (the default
    // would be a system-assigned identity, which this app does not have).
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      appSettings: concat([
        // Host storage and the app's tables/queues, identity-based (no connection string).
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identity.properties.clientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storage.properties.primaryEndpoints.blob
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storage.properties.primaryEndpoints.queue
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storage.properties.primaryEndpoints.table
        }
        // Telemetry, authenticated with the identity (local auth is disabled).
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identity.properties.clientId};Authorization=AAD'
        }
        // OpenTelemetry (host.json telemetryMode): the Python worker passes the host's
        // invocation context to the app's spans (core/adapters/telemetry.py).
        {
          name: 'PYTHON_ENABLE_OPENTELEMETRY'
          value: 'true'
        }
        // The app (SPEC section 2).
        {
          name: 'OutlookApiClientID'
          value: outlookApiClientId
        }
        {
          name: 'OutlookApiClientSecret'
          value: '@Microsoft.KeyVault(SecretUri=${outlookApiClientSecretUri})'
        }
        {
          name: 'SAMLTenantID'
          value: samlTenantId
        }
        {
          name: 'UseSAMLtenantIDForOutlook'
          value: useSamlTenantIdForOutlook ? 'true' : 'false'
        }
        {
          name: 'OutlookAllowedTenantIDs'
          value: outlookAllowedTenantIds
        }
        {
          name: 'RequireMatchingOutlookAccount'
          value: requireMatchingOutlookAccount ? 'true' : 'false'
        }
        {
          name: 'EnableCalendarSync'
          value: enableCalendarSync ? 'true' : 'false'
        }
        {
          name: 'SiteUrl'
          value: effectiveSiteUrl
        }
        {
          name: 'TokenEncryptionKeyVaultKey'
          value: keyEncryptionKeyUri
        }
        {
          name: 'TokenEncryptionKeyWrapped'
          value: tokenEncryptionKeyWrapped
        }
        {
          name: 'SyncSchedule'
          value: syncSchedule
        }
        {
          name: 'SyncIntervalMinutes'
          value: string(syncIntervalMinutes)
        }
        {
          name: 'MaxDeleteShare'
          value: maxDeleteShare
        }
        {
          name: 'NotificationUrl'
          value: effectiveNotificationUrl
        }
        {
          name: 'SubscriptionMaxMinutes'
          value: string(subscriptionMaxMinutes)
        }
        {
          name: 'SubscribedSyncIntervalMinutes'
          value: string(subscribedSyncIntervalMinutes)
        }
        {
          name: 'GraphApiBaseUrl'
          value: graphApiBaseUrl
        }
        {
          name: 'AuthorityHost'
          value: authorityHost
        }
        // The queues: the triggers bind %SyncJobsQueue%, %WritesQueue% and %OutboundQueue%,
        // and the app reads the same settings. These are the queues core/storage.bicep creates.
        {
          name: 'SyncJobsQueue'
          value: 'sync-jobs'
        }
        {
          name: 'WritesQueue'
          value: 'writes'
        }
        {
          name: 'OutboundQueue'
          value: 'outbound'
        }
        // The feeds Communifire's backend reads (docs/changes.md); no trigger binds them.
        {
          name: 'CalendarChangesQueue'
          value: 'calendar-changes'
        }
        {
          name: 'OutboundResultsQueue'
          value: 'outbound-results'
        }
      ], optionalSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

output name string = functionApp.name
output id string = functionApp.id
output defaultHostName string = functionApp.properties.defaultHostName
output siteUrl string = effectiveSiteUrl
output redirectUri string = '${effectiveSiteUrl}/oauth2/outlook/callback'
output notificationUrl string = effectiveNotificationUrl
